/* The device page: live values, reported state and command statuses follow the socket. */
(function () {
  "use strict";
  const panel = document.querySelector(".tab-panel[data-device]");
  if (!panel || !window.IoTFlowLive) return;
  const live = window.IoTFlowLive;
  const deviceId = Number(panel.dataset.device);

  function showValue(value) {
    if (typeof value === "number" && !Number.isInteger(value)) return String(Math.round(value * 1000) / 1000);
    return String(value);
  }

  const grid = document.getElementById("live-values");
  live.on("telemetry", (message) => {
    if (message.device !== deviceId || !grid) return;
    const empty = grid.querySelector("[data-empty]");
    if (empty) empty.remove();
    const tiles = [...grid.querySelectorAll(".live-value")];
    Object.entries(message.data).forEach(([name, value]) => {
      let tile = tiles.find((node) => node.dataset.measurement === name);
      if (tile && Date.parse(tile.querySelector(".live-value__time").dateTime) > Date.parse(message.ts)) {
        return; // an older reading (a device catching up): the tile keeps the newest, as a reload would show
      }
      if (!tile) {
        tile = document.createElement("div");
        tile.className = "live-value";
        tile.dataset.measurement = name;
        tile.innerHTML = '<span class="live-value__name"></span><span class="live-value__value"></span><time class="live-value__time"></time>';
        tile.querySelector(".live-value__name").textContent = name;
        // In name order, as the page lists them when it loads.
        const next = [...grid.querySelectorAll(".live-value")].find((node) => node.dataset.measurement > name);
        grid.insertBefore(tile, next || null);
        tiles.push(tile);
      }
      tile.querySelector(".live-value__value").textContent = showValue(value);
      const time = tile.querySelector(".live-value__time");
      time.dateTime = message.ts;
      time.textContent = live.formatTime(message.ts);
      tile.classList.add("is-fresh");
      window.setTimeout(() => tile.classList.remove("is-fresh"), 800);
    });
  });

  live.on("device_state", (message) => {
    const state = document.querySelector("[data-reported-state]");
    if (message.device === deviceId && state) state.textContent = JSON.stringify(message.data.reported_state, null, 2);
  });

  const history = document.querySelector("#command-history tbody");
  live.on("command", (message) => {
    if (message.device !== deviceId || !history) return;
    const data = message.data;
    let row = document.getElementById(`command-${data.id}`);
    if (!row) {
      const empty = history.querySelector("[data-empty]");
      if (empty) empty.remove();
      row = document.createElement("tr");
      row.id = `command-${data.id}`;
      row.innerHTML = '<td><time></time></td><td><code data-field="action"></code></td><td><code data-field="params"></code></td>' +
        '<td><span class="status" data-field="status"></span></td><td data-field="attempts"></td><td data-field="source"></td>';
      row.querySelector("time").dateTime = data.created_at;
      row.querySelector("time").textContent = live.formatTime(data.created_at);
      row.querySelector('[data-field="action"]').textContent = data.action;
      row.querySelector('[data-field="params"]').textContent = JSON.stringify(data.params || {});
      row.querySelector('[data-field="source"]').textContent = data.source;
      history.prepend(row);
    }
    const status = row.querySelector('[data-field="status"]');
    status.className = `status status--${data.status}`;
    status.textContent = data.status;
    row.querySelector('[data-field="attempts"]').textContent = data.attempts;
    let error = row.querySelector('[data-field="error"]');
    if (data.error) {
      if (!error) {
        error = document.createElement("span");
        error.className = "help";
        error.dataset.field = "error";
        status.after(" ", error);
      }
      error.textContent = data.error;
    }
  });

  /* After a dropped connection, the live tab reloads values it may have missed. */
  live.on("reconnected", () => {
    if (grid || history) window.location.reload();
  });
})();
