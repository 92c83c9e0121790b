// Users: create a user through the API (admins only; the API validates and audits it).
"use strict";
(function () {
  const $ = (x) => document.getElementById(x);
  const { api, say, el } = civicam;
  const role = $("u-role"), site = $("u-site");
  function sync() { site.disabled = role.value !== "site_rep"; site.required = role.value === "site_rep"; if (site.disabled) site.value = ""; }
  role.addEventListener("change", sync); sync();
  $("user-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { username: $("u-name").value.trim(), password: $("u-pass").value, role: role.value,
                   site_id: site.value ? Number(site.value) : null, view_unblurred: $("u-unblur").checked };
    try {
      const u = await api("POST", "/api/users", body);
      // Add the row from the API's answer rather than reloading (no read-after-write round trip).
      const siteName = site.value ? site.options[site.selectedIndex].textContent : "–";
      const created = new Date(u.created_at);
      document.querySelector("[data-testid=users] tbody").append(el("tr", {},
        el("td", { class: "num", text: u.id }), el("td", { text: u.username }), el("td", { text: u.role.replace("_", " ") }),
        el("td", { text: siteName }), el("td", { text: u.view_unblurred ? "yes" : "no" }), el("td", { text: u.is_active ? "yes" : "no" }),
        el("td", { text: isNaN(created) ? "" : created.toISOString().slice(0, 16).replace("T", " ") })));
      say("user-msg", `User ${u.username} created as ${u.role.replace("_", " ")}.`, "ok");
      ev.target.reset(); sync();
    } catch (e) { say("user-msg", "The user was not created: " + e.message, "error"); }
  });
})();
