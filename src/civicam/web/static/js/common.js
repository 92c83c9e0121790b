// Shared helpers: API calls with the CSRF header and readable error messages, and small formatting helpers.
"use strict";
window.civicam = (function () {
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function describe(status, body) {
    let detail = body && body.detail;
    if (Array.isArray(detail)) {  // FastAPI validation errors: name the field and the problem
      detail = detail.map((d) => `${(d.loc || []).filter((x) => x !== "body").join(".")}: ${d.msg}`).join("; ");
    }
    if (status === 401) return detail || "Your session has ended; sign in again.";
    if (status === 403) return detail || "Your role may not do this.";
    if (status === 404) return detail || "Not found.";
    if (status >= 500) return `The hub failed (${status})${detail ? ": " + detail : ""}. Try again; if it persists, tell the administrator.`;
    return detail || `Request failed (${status}).`;
  }

  // Every state-changing call carries X-CSRF-Token (see civicam/web/csrf.py); cookies go same-origin only.
  async function api(method, url, body) {
    const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    let resp;
    try { resp = await fetch(url, opts); }
    catch (e) { throw new ApiError(0, "The hub cannot be reached; check the network and try again."); }
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text.slice(0, 200) }; }
    if (resp.status === 401 && method === "GET" && url.startsWith("/api/")) {
      // Session gone: back to the sign-in page, then here again.
      location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    }
    if (!resp.ok) throw new ApiError(resp.status, describe(resp.status, data));
    return data;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
      else if (k === "style") node.style.cssText = v;  // CSSOM, which the CSP allows (a style attribute it blocks)
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function say(node, text, kind) {
    if (typeof node === "string") node = document.getElementById(node);
    if (!node) return;
    node.textContent = text || "";
    node.classList.remove("error", "ok", "warn");
    if (kind) node.classList.add(kind);
  }

  const pad = (n) => String(n).padStart(2, "0");
  const fmtTime = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const fmtDateTime = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtTime(d)}`;
  const toLocalInput = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${fmtTime(d)}`;
  const pct = (x) => (x === null || x === undefined ? "–" : `${Math.round(x * 100)}%`);
  // People in an aggregate bucket; a suppressed one (too few people to publish) has null figures.
  const people = (b, k) => (b.people === null || b.people === undefined ? `fewer than ${k || "a few"}` : String(b.people));
  function startOfToday() { const d = new Date(); d.setHours(0, 0, 0, 0); return d; }

  return { api, ApiError, el, say, fmtTime, fmtDateTime, toLocalInput, pct, people, startOfToday, csrf };
})();
