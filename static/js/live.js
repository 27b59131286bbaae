/* One WebSocket per page to /ws/notifications/: toasts, the unread badge, and live device data.
 *
 * Pages declare the devices they show in <body data-live-devices="1,2"> (or call
 * IoTFlowLive.follow(ids)); every message from the socket is re-dispatched on `document`
 * as a CustomEvent "iotflow:<type>" (telemetry, command, device_health, notification, ...).
 * After a dropped connection the socket reconnects with backoff, subscribes again, refreshes
 * the unread count and fires "iotflow:reconnected" so pages can reload what they missed.
 */
(function () {
  "use strict";
  const body = document.body;
  if (!body || body.dataset.live !== "on") return;

  const CLOSE_UNAUTHENTICATED = 4401;
  const TOAST_MS = 8000;
  const followed = new Set();
  let socket = null;
  let attempts = 0;
  let everConnected = false;
  const timeZone = body.dataset.timeZone || "UTC";
  // The page's language, not the browser's: times the server wrote use the same format (iotflow/formats).
  const locale = document.documentElement.lang || undefined;

  function socketUrl() {
    const configured = body.dataset.wsUrl;
    if (configured) return configured.replace("{hostname}", location.hostname);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/ws/notifications/`;
  }

  function setState(state, text) {
    const status = document.getElementById("live-status");
    if (!status) return;
    status.dataset.state = state;
    const label = status.querySelector(".live-status__text");
    if (label) label.textContent = text;
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function follow(ids) {
    const fresh = ids.map(Number).filter((id) => id > 0 && !followed.has(id));
    fresh.forEach((id) => followed.add(id));
    if (fresh.length) send({ type: "subscribe", devices: fresh });
  }

  function connect() {
    setState("connecting", attempts ? "Reconnecting…" : "Connecting…");
    socket = new WebSocket(socketUrl());
    socket.addEventListener("open", () => {
      attempts = 0;
      setState("live", "Live");
      if (followed.size) send({ type: "subscribe", devices: [...followed] });
      if (everConnected) {
        refreshUnread();
        emit("reconnected", {});
      }
      everConnected = true;
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (message.type === "notification") onNotification(message.data);
      if (message.type === "subscribed") body.dataset.liveSubscribed = message.devices.join(",");
      emit(message.type, message);
    });
    socket.addEventListener("close", (event) => {
      if (event.code === CLOSE_UNAUTHENTICATED) {
        setState("signed-out", "Signed out");
        return;
      }
      setState("offline", "Offline");
      attempts += 1;
      const delay = Math.min(30000, 500 * 2 ** Math.min(attempts, 6)) * (0.75 + Math.random() / 2);
      window.setTimeout(connect, delay);
    });
  }

  function emit(type, detail) {
    document.dispatchEvent(new CustomEvent(`iotflow:${type}`, { detail }));
  }

  function setUnread(count) {
    const badge = document.getElementById("unread-badge");
    if (!badge) return;
    badge.dataset.count = String(count);
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.hidden = count <= 0;
  }

  function refreshUnread() {
    const url = body.dataset.unreadUrl;
    if (!url) return;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((data) => data && setUnread(data.unread))
      .catch(() => {});
  }

  function onNotification(data) {
    const badge = document.getElementById("unread-badge");
    setUnread(Number(badge ? badge.dataset.count || 0 : 0) + 1);
    toast(data);
  }

  function toast(data) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const item = document.createElement("div");
    item.className = `toast toast--${data.type || "info"}`;
    const title = document.createElement("p");
    title.className = "toast__title";
    title.textContent = data.title;
    item.appendChild(title);
    if (data.message) {
      const text = document.createElement("p");
      text.className = "toast__message";
      text.textContent = data.message;
      item.appendChild(text);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast__close";
    close.setAttribute("aria-label", "Dismiss notification");
    close.textContent = "×";
    close.addEventListener("click", () => item.remove());
    item.appendChild(close);
    box.appendChild(item);
    let timer = window.setTimeout(() => item.remove(), TOAST_MS);
    item.addEventListener("mouseenter", () => window.clearTimeout(timer));
    item.addEventListener("mouseleave", () => (timer = window.setTimeout(() => item.remove(), TOAST_MS)));
  }

  function formatTime(value) {
    const date = value instanceof Date ? value : new Date(value);
    if (Number.isNaN(date.getTime())) return "";
    return new Intl.DateTimeFormat(locale, { timeZone, dateStyle: "medium", timeStyle: "medium" }).format(date);
  }

  function on(type, handler) {
    document.addEventListener(`iotflow:${type}`, (event) => handler(event.detail));
  }

  /* Device health badges anywhere on the page follow device_health messages. */
  on("device_health", (message) => {
    document.querySelectorAll(`[data-health-for="${message.device}"]`).forEach((badge) => {
      badge.className = `health health--${message.data.health}`;
      badge.textContent = message.data.health.replace("_", " ").replace(/^./, (c) => c.toUpperCase());
    });
  });
  /* Times marked data-local-time are written as live updates write them, on load and in swapped-in parts. */
  function localiseTimes() {
    document.querySelectorAll("time[data-local-time]").forEach((time) => {
      if (time.dateTime) time.textContent = formatTime(time.dateTime) || time.textContent;
    });
  }
  localiseTimes();
  document.addEventListener("htmx:afterSettle", localiseTimes);
  /* Last seen is when the platform heard from the device (seen), not the reading's own time (ts). */
  on("telemetry", (message) => {
    const seen = message.seen || message.ts;
    document.querySelectorAll(`[data-last-seen-for="${message.device}"]`).forEach((time) => {
      time.dateTime = seen;
      time.textContent = formatTime(seen);
    });
  });

  window.IoTFlowLive = { follow, on, formatTime, timeZone, toast };
  const declared = (body.dataset.liveDevices || "").split(",").filter(Boolean);
  declared.forEach((id) => followed.add(Number(id)));
  connect();
})();
