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

  /* The socket often reports a start or cancel before the answer of the request that made it is in;
   * a reload begun then could land after that answer and wipe its confirmation. So while one of the
   * panel's own requests is on its way, the last report waits and is checked once the answer is shown
   * (htmx has swapped it in by the time the request's loadend fires). */
  let ownRequests = 0;
  let heldReport = null;
  document.body.addEventListener("htmx:beforeRequest", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.closest("#override")) return;
    ownRequests += 1;
    event.detail.xhr.addEventListener("loadend", () => {
      ownRequests -= 1;
      if (ownRequests || !heldReport) return;
      const report = heldReport;
      heldReport = null;
      if (!alreadyShown(report)) refresh();
    });
  });

  if (window.IoTFlowLive) {
    window.IoTFlowLive.on("override", (message) => {
      if (message.device !== deviceId) return;
      if (ownRequests) {
        heldReport = message.data;
      } else if (!alreadyShown(message.data)) {
        refresh();
      }
    });
    /* After a dropped connection the override may have ended unseen. */
    window.IoTFlowLive.on("reconnected", refresh);
  }
})();
