/* The schedules tab: the override's countdown ticks every second, and the override panel reloads
 * (through HTMX) when the countdown reaches zero or the device's socket reports an override change.
 * The server renders the remaining time too, so without JavaScript the page is right when loaded.
 */
(function () {
  "use strict";
  const panel = document.querySelector(".tab-panel[data-device]");
  if (!panel) return;
  const deviceId = Number(panel.dataset.device);
  const deadlines = new WeakMap();

  function clock(totalSeconds) {
    const seconds = Math.max(0, totalSeconds);
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    const rest = String(seconds % 60).padStart(2, "0");
    return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
  }

  function refresh() {
    if (window.htmx) {
      window.htmx.trigger(document.body, "override-changed");
    } else {
      window.location.reload();
    }
  }

  /* The panel this page swapped in after its own start or cancel already shows the change the
   * socket then reports; reloading it would only wipe its confirmation. */
  function alreadyShown(override) {
    const shown = document.getElementById("override");
    if (!shown || Number(shown.dataset.overrideId) !== override.id) return false;
    return (override.status === "active") === (shown.dataset.overrideState !== "none");
  }

  /* The deadline is counted from when the element was first seen, on this browser's monotonic
   * clock, so a computer clock that is off does not skew it. */
  function tick() {
    document.querySelectorAll("[data-countdown]").forEach((element) => {
      if (!deadlines.has(element)) {
        deadlines.set(element, performance.now() + Number(element.dataset.secondsLeft) * 1000);
      }
      const left = Math.ceil((deadlines.get(element) - performance.now()) / 1000);
      element.textContent = clock(left);
      if (left <= 0 && !element.dataset.expired) {
        element.dataset.expired = "true";
        refresh();
      }
    });
  }

  tick();
  window.setInterval(tick, 1000);

  /* The socket often reports a start or cancel before the answer of the request that made it is in.
   * A reload begun then can be answered first, and the start's answer then lands in the panel the
   * reload replaced, so its confirmation never shows. While one of the panel's own forms is waiting
   * (htmx marks it with htmx-request), the last report is held and checked once the answer is in:
   * htmx has swapped it in and taken the mark off by the time it fires htmx:afterRequest, on the
   * form or, when the swap replaced the form, on its nearest ancestor still in the page. */
  let heldReport = null;

  function ownRequestWaiting() {
    return document.querySelector("#override form.htmx-request") !== null;
  }

  document.body.addEventListener("htmx:afterRequest", () => {
    if (!heldReport || ownRequestWaiting()) return;
    const report = heldReport;
    heldReport = null;
    if (!alreadyShown(report)) refresh();
  });

  if (window.IoTFlowLive) {
    window.IoTFlowLive.on("override", (message) => {
      if (message.device !== deviceId) return;
      if (ownRequestWaiting()) {
        heldReport = message.data;
      } else if (!alreadyShown(message.data)) {
        refresh();
      }
    });
    /* After a dropped connection the override may have ended unseen. */
    window.IoTFlowLive.on("reconnected", refresh);
  }
})();
