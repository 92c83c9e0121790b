// Camera wall: one self-recovering live player per tile, and recorder health badges refreshed every 5 s.
"use strict";
(function () {
  const tiles = [...document.querySelectorAll(".tile[data-camera]")];
  for (const tile of tiles) {
    const id = tile.dataset.camera;
    const player = new civicam.Player(tile.querySelector("video"), {
      overlay: tile.querySelector("[data-state]"), blurBadge: tile.querySelector("[data-blur]"),
      onState: (name) => { tile.dataset.state = name; },
    });
    // The wall's own rendition: blurred at 640x360, a quarter of the hub's blurring and the browser's decoding.
    player.play(`/api/cameras/${id}/live.m3u8?rendition=wall`, true);
  }
  async function health() {
    let data;
    try { data = await civicam.api("GET", "/api/recording/health"); } catch (e) { return; }
    const byId = new Map((data.cameras || []).map((c) => [String(c.camera_id), c]));
    for (const tile of tiles) {
      const badge = tile.querySelector("[data-health]");
      const h = byId.get(tile.dataset.camera);
      const state = h ? h.state : (data.running ? "not recording" : "recorder off");
      badge.textContent = state;
      badge.className = "badge h-" + (h ? h.state : "none");
      badge.title = h && h.last_error ? h.last_error : "";
    }
  }
  if (tiles.length) { health(); setInterval(health, 5000); }
})();
