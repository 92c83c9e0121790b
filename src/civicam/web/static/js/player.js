// One HLS player (hls.js) that says what it is doing and recovers by itself when a stream is lost.
"use strict";
civicam.Player = class {
  // video: <video>; opts.overlay: node for state text; opts.blurBadge: node for the blurred indicator.
  constructor(video, opts) {
    this.video = video;
    this.overlay = (opts && opts.overlay) || null;
    this.blurBadge = (opts && opts.blurBadge) || null;
    this.onState = (opts && opts.onState) || (() => {});
    // opts.lowLatency === false: play live segment by segment even where the playlist has parts (the wall's
    // tiles: further behind, but seconds of buffer to ride out a blurring pipeline that falls behind).
    this.lowLatencyOk = !(opts && opts.lowLatency === false);
    this.hls = null; this.url = null; this.live = true; this.retries = 0; this.timer = null; this.stale = false;
    this.lastTime = -1; this.stalledSince = null;
    video.addEventListener("playing", () => { if (!this.stale) this.state("playing", ""); });
    video.addEventListener("waiting", () => { if (!this.stale) this.state("buffering", "Buffering…"); });
    // Watchdog: a live stream whose time stops moving for long is treated as lost and reloaded.
    this.watchdog = setInterval(() => this.check(), 3000);
  }

  state(name, text) {
    this.stateName = name;
    if (this.overlay) { this.overlay.textContent = text; this.overlay.hidden = !text; this.overlay.dataset.state = name; }
    this.video.dataset.state = name;
    this.onState(name, text);
  }

  play(url, live) {
    this.url = url; this.live = live !== false; this.retries = 0; this.stale = false;
    this.load();
  }

  load() {
    clearTimeout(this.timer);
    this.destroyHls();
    if (!window.Hls) { this.state("error", "The video player library is missing (run 'make web')."); return; }
    if (!Hls.isSupported()) { this.state("error", "This browser cannot play HLS video."); return; }
    this.state("connecting", this.retries ? `Reconnecting (attempt ${this.retries + 1})…` : "Connecting…");
    const common = { enableWorker: true, manifestLoadingMaxRetry: 0, levelLoadingMaxRetry: 2, fragLoadingMaxRetry: 2 };
    // Every live view is low-latency HLS (parts, blocking playlist reloads), the blurred one too (its parts
    // are blurred as the recorder writes them): hls.js then stays the playlist's PART-HOLD-BACK (~1.2 s)
    // behind the live edge, but only if no liveSync* option overrides it; after a stall it catches up by
    // playing slightly faster. Playback (not live) keeps the segment-based settings.
    const lowLatency = this.live && this.lowLatencyOk;
    const hls = new Hls(lowLatency
      ? { ...common, lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 }
      : { ...common, lowLatencyMode: false, liveSyncDurationCount: 2, liveMaxLatencyDurationCount: 6 });
    this.hls = hls;
    hls.on(Hls.Events.MANIFEST_LOADED, (_e, data) => {
      const sd = (data && data.sessionData) || {};
      const entry = sd["org.civicam.blurred"];
      if (entry && this.blurBadge) {
        const blurred = String(entry.VALUE) === "true";
        this.blurBadge.hidden = false;
        this.blurBadge.textContent = blurred ? "blurred" : "not blurred";
        this.blurBadge.classList.toggle("warn", !blurred);
        this.blurBadge.title = blurred ? "Faces are blurred." : "This hub serves video without blurring (blurring is not available yet or was lifted with a stated reason).";
        this.video.dataset.blurred = String(blurred);
      }
    });
    // A live playlist whose newest segment is old means the camera stopped sending (the hub still answers):
    // say so, keep polling, and jump back to the live edge as soon as fresh segments appear.
    hls.on(Hls.Events.LEVEL_UPDATED, (_e, data) => {
      const d = data.details;
      if (!this.live || !d || !d.live || !d.fragments.length) return;
      const last = d.fragments[d.fragments.length - 1];
      if (!last.programDateTime) return;
      const edge = last.programDateTime + last.duration * 1000;
      const age = Date.now() - edge;
      const limit = Math.max(8000, 2.5 * (d.targetduration || 4) * 1000);
      if (age > limit) {
        if (!this.stale) this.stale = true;
        this.state("lost", `Stream lost: no video from the camera since ${new Date(edge).toLocaleTimeString()} — waiting for it to come back…`);
      } else if (this.stale) {
        this.stale = false;
        this.state("recovering", "Stream is back — reconnecting…");
        this.load();
      }
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      this.retries = 0;
      const p = this.video.play();
      if (p && p.catch) p.catch(() => this.state("paused", "Press play to start."));
    });
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !this.mediaRecovered) {
        this.mediaRecovered = true; hls.recoverMediaError(); return;
      }
      const status = data.response && data.response.code;
      let why = "Stream lost";
      if (status === 404) why = this.live ? "No video yet (nothing recorded for this camera)" : "No recording in that interval";
      else if (status === 401) why = "Session ended; sign in again";
      else if (status === 403) why = "Your role may not view this video";
      else if (status === 501) why = "Blurred video is not available yet";
      if (status === 401 || status === 403 || (!this.live && status === 404)) { this.state("error", why + "."); this.destroyHls(); return; }
      this.retryLater(why, status === 404 ? 2 : null);
    });
    hls.loadSource(this.url);
    hls.attachMedia(this.video);
  }

  retryLater(why, fixedWait) {
    this.destroyHls();
    // Back off up to 10 s; "nothing recorded yet" is polled every 2 s so a new camera shows up quickly.
    const wait = fixedWait || Math.min(10, 1 + 2 * this.retries);
    this.retries += 1;
    this.state("lost", `${why} — retrying in ${wait} s…`);
    this.timer = setTimeout(() => this.load(), wait * 1000);
  }

  check() {
    if (!this.live || !this.hls || this.stale || (this.video.paused && this.stateName !== "buffering")) { this.stalledSince = null; return; }
    const t = this.video.currentTime;
    if (t !== this.lastTime) { this.lastTime = t; this.stalledSince = null; return; }
    this.stalledSince = this.stalledSince || Date.now();
    if (Date.now() - this.stalledSince > 15000) { this.stalledSince = null; this.retryLater("Stream stalled"); }
  }

  destroyHls() {
    if (this.hls) { this.hls.destroy(); this.hls = null; }
    this.mediaRecovered = false;
  }

  stop() { clearTimeout(this.timer); clearInterval(this.watchdog); this.destroyHls(); }
};
