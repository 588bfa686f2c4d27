// The replay page of a skytwin run. Reads the JSON payload written by
// twin/reports/replay.py (columns as arrays, times in whole seconds from meta.t0_mjd)
// and draws four views of one clock: the world with the terminator and the sites'
// states, each site's sky, every telescope's timeline, and the events so far.
// No libraries and no requests: canvas for what is redrawn every frame, SVG for the
// exposure marks one clicks.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("replay-data").textContent);
  const STR = D.strings;
  const DEG = Math.PI / 180;
  const STATE_COLOURS = {
    science: "#2e7d32", readout: "#8bc34a", slew: "#ffb300", weather: "#607d8b",
    failure: "#c62828", idle: "#fff1bf", aborted: "#8e24aa", calibration: "#4fc3f7",
  };
  const SITE_COLOURS = {
    observing: "#2e7d32", idle: "#fbc02d", closed: "#607d8b", failed: "#c62828", day: "#ffffff",
  };
  // Observing between two visits of a cadence: still observing, in a lighter green.
  const BETWEEN_COLOUR = "#81c784";
  const BETWEEN = "between visits";
  const SITE_LABELS = {
    observing: "observing", idle: "idle (open, nothing to do)", closed: "dome closed (weather)",
    failed: "failed", day: "day",
  };
  const TEL_COLOURS = ["#1565c0", "#d84315", "#6a1b9a", "#00838f", "#ad1457", "#558b2f",
    "#4e342e", "#283593", "#ef6c00", "#00695c"];
  const ALERT_COLOURS = { issued: "#ff6f00", followed: "#f9a825", detected: "#d81b60", confirmed: "#2e7d32" };
  // Timeline marks of the alert desk: the alert's own steps in ALERT_COLOURS' colours, the
  // centre's steps in blues (received: the broker's latency later; sent: a site has the request).
  const EVENT_COLOURS = {
    alert_issued: ALERT_COLOURS.issued, alert_received: "#1e88e5", request_released: "#80deea",
    alert_followed: ALERT_COLOURS.followed, alert_detected: ALERT_COLOURS.detected,
    confirmation_requested: ALERT_COLOURS.issued, alert_confirmed: ALERT_COLOURS.confirmed,
  };
  const EVENT_TEXT = {
    alert_issued: "alert issued", alert_received: "alert received by the centre",
    request_released: "follow-up request", alert_followed: "alert followed up",
    alert_detected: "transient detected", confirmation_requested: "confirmation asked",
    alert_confirmed: "transient confirmed", dome_close: "dome closed", dome_open: "dome opened",
    failure: "failure", repair: "repaired", exposure_aborted: "exposure aborted",
    frame_rejected: "frame rejected", visit_repeated: "visit repeated",
  };
  const TIMELINE_MARKED = new Set(Object.keys(EVENT_COLOURS));

  const meta = D.meta, sites = D.sites, tels = D.telescopes, obs = D.obs;
  const duration = Math.max(1, meta.duration_s);
  const nObs = obs.id.length;
  const byId = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ indices
  const telObs = tels.map(() => []);        // exposure indices per telescope, in time order
  for (let i = 0; i < nObs; i++) if (obs.tel[i] >= 0) telObs[obs.tel[i]].push(i);
  const telTl = tels.map(() => []);         // timeline interval indices per telescope
  for (let j = 0; j < D.timeline.t.length; j++) telTl[D.timeline.tel[j]].push(j);
  const siteNights = sites.map(() => []);
  for (let j = 0; j < D.nights.t.length; j++) siteNights[D.nights.site[j]].push([D.nights.t[j], D.nights.end[j]]);
  siteNights.forEach((list) => list.sort((a, b) => a[0] - b[0]));
  const siteTels = sites.map((_, k) => tels.map((t, i) => (t.site === k ? i : -1)).filter((i) => i >= 0));
  const eventOrder = D.events.t.map((_, j) => j);
  const framesLeftOut = new Set(D.frames_left_out);
  const logItems = buildLog();

  // Last index i of sorted(keys) with key(i) <= x, or -1.
  function lastAtOrBefore(list, key, x) {
    let lo = 0, hi = list.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (key(list[mid]) <= x) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return found;
  }
  function interp(ts, vs, t) {
    const i = lastAtOrBefore(ts, (v) => v, t);
    if (i < 0) return vs[0];
    if (i >= ts.length - 1) return vs[ts.length - 1];
    const f = (t - ts[i]) / (ts[i + 1] - ts[i]);
    return vs[i] + f * (vs[i + 1] - vs[i]);
  }
  const eph = D.ephemeris;
  const gastDeg = (t) => interp(eph.t, eph.gast, t);
  const sunAt = (t) => ({ lon: interp(eph.t, eph.sun_lon, t), dec: interp(eph.t, eph.sun_dec, t) });
  const moonAt = (t) => ({
    ra: ((interp(eph.t, eph.moon_ra, t) % 360) + 360) % 360,
    dec: interp(eph.t, eph.moon_dec, t), illum: interp(eph.t, eph.moon_illum, t),
  });

  function nightOf(k, t) {
    const list = siteNights[k];
    const i = lastAtOrBefore(list, (n) => n[0], t);
    return i >= 0 && t < list[i][1] ? list[i] : null;
  }

  // ------------------------------------------------------------------ states
  // A telescope's state at t: day outside its site's night; inside, its timeline state.
  // "observing" has a phase: exposing, slewing, readout... or "between visits", idle
  // between two exposures less than spell_gap_s apart in the same night. That is the
  // wait of a cadence for its next visit (relay: 72 min), so the telescope is still
  // observing its target; the phase says it is not exposing. (A guess from the gap alone:
  // the payload does not say which request the next exposure serves.)
  function telState(k, t) {
    const site = tels[k].site;
    const night = nightOf(site, t);
    const list = telObs[k];
    const p = lastAtOrBefore(list, (i) => obs.t[i], t);
    const prev = p >= 0 ? list[p] : -1;
    if (prev >= 0 && t < obs.t[prev] + obs.dur[prev]) return { state: "observing", phase: "exposing", activity: "exposing", obs: prev };
    if (!night) return { state: "day", phase: "day", activity: "day", obs: -1 };
    const next = p + 1 < list.length ? list[p + 1] : -1;
    const tl = telTl[k];
    const q = lastAtOrBefore(tl, (j) => D.timeline.t[j], t);
    let st = "idle";
    if (q >= 0 && t < D.timeline.t[tl[q]] + D.timeline.dur[tl[q]]) st = D.states[D.timeline.state[tl[q]]];
    if (st === "weather") return { state: "closed", phase: "closed", activity: "dome closed by the weather", obs: -1 };
    if (st === "failure") return { state: "failed", phase: "failed", activity: "failed, waiting for repair", obs: -1 };
    if (st === "slew") return { state: "observing", phase: "slewing", activity: "slewing", obs: next >= 0 ? next : prev };
    if (st !== "idle") return { state: "observing", phase: st, activity: st, obs: prev >= 0 ? prev : next };
    const inNight = (i) => i >= 0 && obs.t[i] >= night[0] && obs.t[i] < night[1];
    if (inNight(prev) && inNight(next) && obs.t[next] - (obs.t[prev] + obs.dur[prev]) < D.spell_gap_s) {
      return { state: "observing", phase: BETWEEN, activity: BETWEEN + " (next exposure in " + hm(obs.t[next] - t) + ")", obs: prev };
    }
    return { state: "idle", phase: "idle", activity: "idle", obs: -1 };
  }
  const SITE_ORDER = ["observing", "idle", "closed", "failed", "day"];
  const busy = (state) => state === "observing"; // has a current target
  // A site's state is its busiest telescope's; an observing site's phase is that of a
  // telescope at work (exposing, slewing...) if any, else "between visits".
  function siteState(k, t) {
    const states = siteTels[k].map((i) => telState(i, t));
    let best = "day";
    for (const s of SITE_ORDER.slice().reverse()) if (states.some((x) => x.state === s)) best = s;
    const targets = [...new Set(states.filter((x) => busy(x.state) && x.obs >= 0).map((x) => STR[obs.target[x.obs]]))];
    const same = states.filter((x) => x.state === best);
    const lead = same.find((x) => x.phase !== BETWEEN) || same[0];
    return { state: best, phase: lead ? lead.phase : best, activity: lead ? lead.activity : best, targets, tels: states };
  }
  const siteColour = (st) => (st.phase === BETWEEN ? BETWEEN_COLOUR : SITE_COLOURS[st.state]);

  // ------------------------------------------------------------------ time helpers
  function utc(t) {
    const ms = (meta.t0_mjd - 40587) * 86400000 + t * 1000;
    return new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }
  function solarTime(t, lonDeg) {
    const hours = ((((meta.t0_mjd % 1) * 24 + t / 3600 + lonDeg / 15) % 24) + 24) % 24;
    const h = Math.floor(hours), m = Math.floor((hours - h) * 60);
    return String(h).padStart(2, "0") + ":" + String(m).padStart(2, "0");
  }
  const hm = (s) => (s < 3600 ? Math.round(s / 60) + " min" : (s / 3600).toFixed(1) + " h");

  // ------------------------------------------------------------------ canvas setup
  function fitCanvas(canvas, cssHeight) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 600;
    const h = cssHeight || canvas.clientHeight || w / 2;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return { ctx, w, h };
  }

  // ------------------------------------------------------------------ world map
  const shade = document.createElement("canvas");
  shade.width = 360; shade.height = 180;
  const shadeCtx = shade.getContext("2d");
  const shadeImg = shadeCtx.createImageData(360, 180);
  for (let o = 0; o < shadeImg.data.length; o += 4) {
    shadeImg.data[o] = 10; shadeImg.data[o + 1] = 22; shadeImg.data[o + 2] = 48;
  }
  const SIN_18 = Math.sin(18 * DEG);
  const SHADE = new Uint8Array(256).map((_, i) => Math.round(200 * Math.pow(i / 255, 0.6)));
  const cells = (n, f) => Float64Array.from({ length: n }, (_, i) => f(i));
  const SIN_LAT = cells(180, (r) => Math.sin((89.5 - r) * DEG)), COS_LAT = cells(180, (r) => Math.cos((89.5 - r) * DEG));
  const SIN_LON = cells(360, (c) => Math.sin((c - 179.5) * DEG)), COS_LON = cells(360, (c) => Math.cos((c - 179.5) * DEG));
  const COS_SUN_LON = new Float64Array(360);

  // Land: Natural Earth 1:110m (land.js, written by make_land.py), rings in whole units of
  // unit_deg, delta-coded. A ring's longitudes run on past +-180 where it crosses the
  // antimeridian, so every ring is drawn three times, shifted by -360, 0 and +360 deg.
  const LAND_COLOUR = "#e6dfc4", OCEAN_COLOUR = "#cfe3f2";
  const LAND = ((land) => (land ? land.rings : []).map((r) => {
    const out = new Float64Array(r.length);
    let lon = 0, lat = 0;
    for (let i = 0; i < r.length; i += 2) {
      lon += r[i]; lat += r[i + 1];
      out[i] = lon * land.unit_deg; out[i + 1] = lat * land.unit_deg;
    }
    return out;
  }))(window.SKYTWIN_LAND);
  let landPath = null, landKey = "";
  function drawLand(ctx, w, h) {
    if (landKey !== w + "x" + h) {
      landKey = w + "x" + h;
      landPath = new Path2D();
      for (const shift of [-360, 0, 360]) {
        for (const r of LAND) {
          for (let i = 0; i < r.length; i += 2) {
            const px = (r[i] + shift + 180) / 360 * w, py = (90 - r[i + 1]) / 180 * h;
            if (i) landPath.lineTo(px, py); else landPath.moveTo(px, py);
          }
          landPath.closePath();
        }
      }
    }
    ctx.fillStyle = LAND_COLOUR; ctx.fill(landPath, "evenodd"); // evenodd: the Caspian is a hole
    ctx.strokeStyle = "#a79f80"; ctx.lineWidth = 0.6; ctx.stroke(landPath);
  }

  function drawMap(t, siteStates) {
    const { ctx, w, h } = fitCanvas(byId("map"));
    const x = (lon) => ((((lon + 180) % 360) + 360) % 360) / 360 * w;
    const y = (lat) => (90 - lat) / 180 * h;
    ctx.fillStyle = OCEAN_COLOUR;
    ctx.fillRect(0, 0, w, h);
    drawLand(ctx, w, h);
    // Night: darkness grows from sunset to astronomical twilight (sun 18 deg down).
    // Per cell only a product and a table look-up: sin(alt) is linear in the cell's
    // precomputed sin/cos terms, and asin(x) ~ x within the 18 deg of twilight.
    const sun = sunAt(t);
    const sd = Math.sin(sun.dec * DEG), cd = Math.cos(sun.dec * DEG);
    const cL = Math.cos(sun.lon * DEG), sL = Math.sin(sun.lon * DEG);
    const px = shadeImg.data;
    for (let c = 0; c < 360; c++) COS_SUN_LON[c] = COS_LON[c] * cL + SIN_LON[c] * sL;
    for (let r = 0; r < 180; r++) {
      const a0 = SIN_LAT[r] * sd, b0 = COS_LAT[r] * cd;
      let o = r * 360 * 4;
      for (let c = 0; c < 360; c++, o += 4) {
        const sinAlt = a0 + b0 * COS_SUN_LON[c];
        px[o + 3] = sinAlt >= 0 ? 0 : sinAlt <= -SIN_18 ? SHADE[255] : SHADE[Math.round(-sinAlt / SIN_18 * 255)];
      }
    }
    shadeCtx.putImageData(shadeImg, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(shade, 0, 0, w, h);
    // Graticule every 30 deg, the equator and the tropics.
    ctx.strokeStyle = "rgba(60,80,110,0.35)"; ctx.lineWidth = 0.7;
    ctx.beginPath();
    for (let lon = -150; lon < 180; lon += 30) { ctx.moveTo(x(lon), 0); ctx.lineTo(x(lon), h); }
    for (let lat = -60; lat <= 60; lat += 30) { ctx.moveTo(0, y(lat)); ctx.lineTo(w, y(lat)); }
    ctx.stroke();
    ctx.strokeStyle = "rgba(40,60,90,0.8)"; ctx.lineWidth = 1.2;
    ctx.beginPath(); ctx.moveTo(0, y(0)); ctx.lineTo(w, y(0)); ctx.stroke();
    ctx.setLineDash([4, 4]); ctx.lineWidth = 0.7;
    ctx.beginPath();
    for (const lat of [23.44, -23.44]) { ctx.moveTo(0, y(lat)); ctx.lineTo(w, y(lat)); }
    ctx.stroke(); ctx.setLineDash([]);
    ctx.fillStyle = "rgba(40,60,90,0.8)"; ctx.font = "10px system-ui, sans-serif";
    ctx.fillText("equator", 4, y(0) - 3);
    // The Sun and the Moon overhead.
    const sx = x(sun.lon), sy = y(sun.dec);
    ctx.fillStyle = "#ffca28"; ctx.strokeStyle = "#e65100";
    ctx.beginPath(); ctx.arc(sx, sy, 7, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    const moon = moonAt(t);
    const mx = x(moon.ra - gastDeg(t)), my = y(moon.dec);
    ctx.fillStyle = "#eceff1"; ctx.strokeStyle = "#455a64";
    ctx.beginPath(); ctx.arc(mx, my, 5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    drawHandoffArcs(ctx, t, x, y);
    // Sites, coloured by state: the labels first, each where it covers no other site's dot
    // nor an earlier label (right, left, above, below), then the dots over them.
    ctx.font = "11px system-ui, sans-serif";
    const dots = sites.map((s) => [x(s.lon), y(s.lat)]);
    const placed = [];
    sites.forEach((s, k) => {
      const st = siteStates[k];
      const [px, py] = dots[k];
      const target = st.targets.length ? st.targets[0] + (st.targets.length > 1 ? " +" + (st.targets.length - 1) : "") : "";
      const label = s.name + (target ? ": " + (target.length > 22 ? target.slice(0, 21) + "\u2026" : target) : "");
      const tw = ctx.measureText(label).width;
      const boxes = [[px + 9, py - 7], [px - 9 - tw, py - 7], [px - tw / 2, py - 22], [px - tw / 2, py + 9]]
        .map(([bx, by]) => [bx, by, bx + tw, by + 13]);
      const free = (b) => b[0] >= 0 && b[2] <= w && b[1] >= 0 && b[3] <= h
        && dots.every(([dx, dy], j) => j === k || dx < b[0] - 8 || dx > b[2] + 8 || dy < b[1] - 8 || dy > b[3] + 8)
        && placed.every((o) => o[2] < b[0] || o[0] > b[2] || o[3] < b[1] || o[1] > b[3]);
      const box = boxes.find(free) || boxes[px > w - 150 ? 1 : 0];
      placed.push(box);
      ctx.lineWidth = 3; ctx.strokeStyle = "rgba(255,255,255,0.85)";
      ctx.strokeText(label, box[0], box[1] + 11);
      ctx.fillStyle = "#111"; ctx.fillText(label, box[0], box[1] + 11);
    });
    sites.forEach((s, k) => {
      const st = siteStates[k];
      const [px, py] = dots[k];
      ctx.fillStyle = siteColour(st); ctx.strokeStyle = "#111"; ctx.lineWidth = 1.2;
      ctx.beginPath(); ctx.arc(px, py, st.state === "observing" ? 7 : 5.5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    });
  }

  // A handoff shows for two hours as an arrow from the site that last had the target.
  function drawHandoffArcs(ctx, t, x, y) {
    const ho = D.handoffs;
    for (let j = 0; j < ho.t.length; j++) {
      const age = t - ho.t[j];
      if (age < 0 || age > 7200 || ho.from[j] < 0 || ho.to[j] < 0) continue;
      const a = sites[ho.from[j]], b = sites[ho.to[j]];
      const x0 = x(a.lon), y0 = y(a.lat), x1 = x(b.lon), y1 = y(b.lat);
      if (Math.abs(x1 - x0) > 0.5 * ctx.canvas.clientWidth) continue; // across the date line
      const cx = (x0 + x1) / 2, cy = Math.min(y0, y1) - 40;
      ctx.strokeStyle = `rgba(213,0,0,${1 - age / 7200})`; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(x0, y0); ctx.quadraticCurveTo(cx, cy, x1, y1); ctx.stroke();
      const ang = Math.atan2(y1 - cy, x1 - cx);
      ctx.beginPath(); ctx.moveTo(x1, y1);
      ctx.lineTo(x1 - 9 * Math.cos(ang - 0.4), y1 - 9 * Math.sin(ang - 0.4));
      ctx.lineTo(x1 - 9 * Math.cos(ang + 0.4), y1 - 9 * Math.sin(ang + 0.4));
      ctx.closePath(); ctx.fillStyle = ctx.strokeStyle; ctx.fill();
      ctx.fillStyle = "#b71c1c"; ctx.font = "11px system-ui, sans-serif";
      ctx.fillText("handoff: " + STR[ho.target[j]], cx - 30, cy + 10);
    }
  }

  // ------------------------------------------------------------------ site list
  const siteItems = sites.map((s) => {
    const li = document.createElement("li");
    li.dataset.site = s.name;
    li.innerHTML = '<span class="dot"></span><b></b><span class="label"><span class="state"></span> <span class="target"></span>'
      + '<span class="phase"></span></span><span class="state local"></span>';
    li.querySelector("b").textContent = s.name;
    li.title = s.full_name || s.name;
    byId("site-list").appendChild(li);
    return li;
  });
  function updateSiteList(t, siteStates) {
    siteItems.forEach((li, k) => {
      const st = siteStates[k];
      li.dataset.state = st.state;
      li.dataset.phase = st.phase;
      li.dataset.targets = st.targets.join(",");
      li.querySelector(".dot").style.background = siteColour(st);
      // "observing M83 (exposing)", "observing M83 — between visits (next exposure in 1.2 h)"
      li.querySelector(".state").textContent = SITE_LABELS[st.state];
      li.querySelector(".target").textContent = st.targets.join(", ");
      li.querySelector(".phase").textContent = !busy(st.state) ? ""
        : st.phase === BETWEEN ? " — " + st.activity : " (" + st.activity + ")";
      li.querySelector(".local").textContent = solarTime(t, sites[k].lon) + " solar";
    });
  }

  // ------------------------------------------------------------------ sky
  let skyView = sites.length <= 4 ? "altaz" : "radec";
  document.querySelectorAll('input[name="skyview"]').forEach((el) => {
    el.checked = el.value === skyView;
    el.addEventListener("change", () => { skyView = el.value; render(); });
  });
  function altAz(raDeg, decDeg, latDeg, lstDeg) {
    const H = (lstDeg - raDeg) * DEG, d = decDeg * DEG, l = latDeg * DEG;
    const sinAlt = Math.sin(d) * Math.sin(l) + Math.cos(d) * Math.cos(l) * Math.cos(H);
    const az = Math.atan2(-Math.sin(H) * Math.cos(d), Math.sin(d) * Math.cos(l) - Math.cos(d) * Math.sin(l) * Math.cos(H));
    return { alt: Math.asin(sinAlt) / DEG, az: ((az / DEG) + 360) % 360 };
  }
  function visibleAlerts(t) {
    const out = [];
    const a = D.alerts;
    for (let j = 0; j < a.id.length; j++) {
      if (a.issued[j] === null || a.issued[j] > t) continue;
      let status = "issued";
      if (a.followed[j] !== null && a.followed[j] <= t) status = "followed";
      if (a.detected[j] !== null && a.detected[j] <= t) status = "detected";
      if (a.confirmed[j] !== null && a.confirmed[j] <= t) status = "confirmed";
      out.push({ ra: a.ra[j], dec: a.dec[j], id: a.id[j], status });
    }
    return out;
  }
  function star(ctx, x, y, r, colour) {
    ctx.beginPath();
    for (let i = 0; i < 10; i++) {
      const rr = i % 2 ? r * 0.45 : r, ang = -Math.PI / 2 + i * Math.PI / 5;
      ctx.lineTo(x + rr * Math.cos(ang), y + rr * Math.sin(ang));
    }
    ctx.closePath(); ctx.fillStyle = colour; ctx.fill(); ctx.strokeStyle = "#333"; ctx.lineWidth = 0.8; ctx.stroke();
  }

  function drawSky(t, siteStates) {
    const canvas = byId("sky");
    if (skyView === "altaz") drawAltAz(canvas, t, siteStates); else drawRaDec(canvas, t, siteStates);
    byId("sky-legend").textContent = skyView === "altaz"
      ? "Each site's sky seen from below: zenith in the centre, horizon on the circle, north up, east left. "
        + "Line: the current target's path through the site's night; dots: exposures taken; star: alerts; grey disc: the Moon."
      : "RA increases to the left. +: each site's zenith, moving as the Earth turns. Lines: each telescope's pointings tonight; "
        + "ring: current target; star: alerts; grey disc: the Moon.";
  }

  function drawAltAz(canvas, t, siteStates) {
    const n = sites.length;
    const cols = Math.ceil(Math.sqrt(n * 1.5)), rows = Math.ceil(n / cols);
    const w = canvas.clientWidth || 500;
    const cell = w / cols;
    const { ctx } = fitCanvas(canvas, cell * rows);
    canvas.style.aspectRatio = "auto";
    ctx.clearRect(0, 0, w, cell * rows);
    const moon = moonAt(t), alerts = visibleAlerts(t), gast = gastDeg(t);
    sites.forEach((s, k) => {
      const cx = (k % cols + 0.5) * cell, cy = (Math.floor(k / cols) + 0.5) * cell + 6;
      const R = cell * 0.38;
      const st = siteStates[k];
      const lst = gast + s.lon;
      const pos = (alt, az) => {
        const r = (90 - alt) / 90 * R;
        return [cx - r * Math.sin(az * DEG), cy - r * Math.cos(az * DEG)];
      };
      ctx.fillStyle = st.state === "day" ? "#e9eef3" : "#0f1c33";
      ctx.beginPath(); ctx.arc(cx, cy, R, 0, 2 * Math.PI); ctx.fill();
      ctx.strokeStyle = st.state === "day" ? "#b0bccb" : "#3c4e6b"; ctx.lineWidth = 0.7;
      ctx.beginPath(); ctx.arc(cx, cy, R / 3, 0, 2 * Math.PI); ctx.arc(cx, cy, 2 * R / 3, 0, 2 * Math.PI); ctx.stroke();
      ctx.strokeStyle = "#5c6b80"; ctx.lineWidth = 1.2;
      ctx.beginPath(); ctx.arc(cx, cy, R, 0, 2 * Math.PI); ctx.stroke();
      ctx.fillStyle = "#5c6b80"; ctx.font = "10px system-ui, sans-serif"; ctx.textAlign = "center";
      ctx.fillText("N", cx, cy - R - 3); ctx.fillText("E", cx - R - 7, cy + 3); ctx.fillText("W", cx + R + 8, cy + 3);
      ctx.fillStyle = "#111"; ctx.font = "bold 11px system-ui, sans-serif";
      ctx.fillText(s.name, cx, cy - R - 14 > 8 ? cy - R - 14 : 10);
      ctx.font = "10px system-ui, sans-serif"; ctx.fillStyle = "#444";
      ctx.fillText(st.state + (st.targets.length ? ": " + st.targets.join(", ") : "")
        + (st.phase === BETWEEN ? " (" + BETWEEN + ")" : ""), cx, cy + R + 13);
      ctx.textAlign = "left";
      const night = nightOf(k, t);
      siteTels[k].forEach((ti) => {
        const ts = st.tels[siteTels[k].indexOf(ti)];
        const last = lastAtOrBefore(telObs[ti], (i) => obs.t[i], t);
        const i = ts.obs >= 0 ? ts.obs : last >= 0 ? telObs[ti][last] : -1;
        if (i < 0 || !night || obs.t[i] < night[0]) return;
        const colour = TEL_COLOURS[ti % TEL_COLOURS.length];
        // The target's path across this night (10-min steps), above the horizon.
        ctx.strokeStyle = colour; ctx.lineWidth = 1.5; ctx.globalAlpha = 0.75;
        ctx.beginPath();
        let pen = false;
        for (let tt = night[0]; tt <= night[1]; tt += 600) {
          const p = altAz(obs.ra[i], obs.dec[i], s.lat, gastDeg(tt) + s.lon);
          if (p.alt < 0) { pen = false; continue; }
          const [px, py] = pos(p.alt, p.az);
          if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
          pen = true;
        }
        ctx.stroke(); ctx.globalAlpha = 1;
        // Exposures of this target from this telescope so far tonight.
        ctx.fillStyle = colour;
        for (const e of telObs[ti]) {
          if (obs.t[e] > t) break;
          if (obs.t[e] < night[0] || obs.target[e] !== obs.target[i] || obs.alt[e] === null) continue;
          const [px, py] = pos(obs.alt[e], obs.az[e]);
          ctx.beginPath(); ctx.arc(px, py, 2.2, 0, 2 * Math.PI); ctx.fill();
        }
        const now = altAz(obs.ra[i], obs.dec[i], s.lat, lst);
        if (now.alt > 0) {
          const [px, py] = pos(now.alt, now.az);
          ctx.strokeStyle = colour; ctx.lineWidth = 2.5;
          ctx.beginPath(); ctx.arc(px, py, busy(ts.state) ? 7 : 5, 0, 2 * Math.PI); ctx.stroke();
          ctx.fillStyle = st.state === "day" ? "#111" : "#fff"; ctx.font = "10px system-ui, sans-serif";
          ctx.fillText(STR[obs.target[i]], px + 8, py - 6);
        }
      });
      const m = altAz(moon.ra, moon.dec, s.lat, lst);
      if (m.alt > 0) {
        const [px, py] = pos(m.alt, m.az);
        ctx.fillStyle = "#cfd8dc"; ctx.beginPath(); ctx.arc(px, py, 5, 0, 2 * Math.PI); ctx.fill();
      }
      for (const a of alerts) {
        const p = altAz(a.ra, a.dec, s.lat, lst);
        if (p.alt > 0) { const [px, py] = pos(p.alt, p.az); star(ctx, px, py, 6, ALERT_COLOURS[a.status]); }
      }
    });
  }

  function drawRaDec(canvas, t, siteStates) {
    canvas.style.aspectRatio = "3 / 2";
    const { ctx, w, h } = fitCanvas(canvas);
    const x = (ra) => (360 - ra) / 360 * w, y = (dec) => (90 - dec) / 180 * h;
    ctx.fillStyle = "#0f1c33"; ctx.fillRect(0, 0, w, h);
    ctx.strokeStyle = "rgba(160,180,210,0.3)"; ctx.lineWidth = 0.7; ctx.beginPath();
    for (let ra = 0; ra < 360; ra += 30) { ctx.moveTo(x(ra), 0); ctx.lineTo(x(ra), h); }
    for (let dec = -60; dec <= 60; dec += 30) { ctx.moveTo(0, y(dec)); ctx.lineTo(w, y(dec)); }
    ctx.stroke();
    ctx.fillStyle = "rgba(200,210,230,0.7)"; ctx.font = "10px system-ui, sans-serif";
    for (let ra = 0; ra < 360; ra += 60) ctx.fillText(ra / 15 + "h", x(ra) + 2, h - 4);
    for (let dec = -60; dec <= 60; dec += 30) ctx.fillText(dec + "\u00b0", 2, y(dec) - 2);
    const gast = gastDeg(t);
    sites.forEach((s, k) => {
      const zx = x((((gast + s.lon) % 360) + 360) % 360), zy = y(s.lat);
      ctx.strokeStyle = siteStates[k].state === "day" ? "#90a4ae" : siteColour(siteStates[k]);
      ctx.lineWidth = 1.5; ctx.beginPath();
      ctx.moveTo(zx - 6, zy); ctx.lineTo(zx + 6, zy); ctx.moveTo(zx, zy - 6); ctx.lineTo(zx, zy + 6); ctx.stroke();
      ctx.fillStyle = "#b0bec5"; ctx.fillText(s.name, zx + 7, zy - 4);
    });
    tels.forEach((tel, ti) => {
      const night = nightOf(tel.site, t);
      const colour = TEL_COLOURS[ti % TEL_COLOURS.length];
      const done = telObs[ti].filter((e) => obs.t[e] <= t && night && obs.t[e] >= night[0]);
      ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = 1; ctx.globalAlpha = 0.8;
      ctx.beginPath();
      done.forEach((e, n) => { const px = x(obs.ra[e]), py = y(obs.dec[e]); if (n) ctx.lineTo(px, py); else ctx.moveTo(px, py); });
      ctx.stroke();
      for (const e of done) { ctx.beginPath(); ctx.arc(x(obs.ra[e]), y(obs.dec[e]), 2, 0, 2 * Math.PI); ctx.fill(); }
      ctx.globalAlpha = 1;
      const ts = siteStates[tel.site].tels[siteTels[tel.site].indexOf(ti)];
      if (busy(ts.state) && ts.obs >= 0) {
        ctx.lineWidth = 2.5; ctx.beginPath(); ctx.arc(x(obs.ra[ts.obs]), y(obs.dec[ts.obs]), 7, 0, 2 * Math.PI); ctx.stroke();
        ctx.fillStyle = "#fff"; ctx.fillText(STR[obs.target[ts.obs]], x(obs.ra[ts.obs]) + 9, y(obs.dec[ts.obs]) + 12);
      }
    });
    const moon = moonAt(t);
    ctx.fillStyle = "#cfd8dc"; ctx.beginPath(); ctx.arc(x(moon.ra), y(moon.dec), 6, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = "#cfd8dc"; ctx.fillText("Moon " + Math.round(moon.illum * 100) + "%", x(moon.ra) + 8, y(moon.dec) + 3);
    for (const a of visibleAlerts(t)) star(ctx, x(a.ra), y(a.dec), 6, ALERT_COLOURS[a.status]);
  }

  // ------------------------------------------------------------------ timelines
  const ROW_H = 22, LABEL_W = 140, AXIS_H = 18, TOP_ROW = "alerts & handoffs";
  const svgNS = "http://www.w3.org/2000/svg";
  const svg = byId("tl-svg");
  const rowsH = AXIS_H + ROW_H * (tels.length + 1) + 4;
  byId("timeline-wrap").style.height = rowsH + "px";
  const marks = document.createElementNS(svgNS, "g");
  const events = document.createElementNS(svgNS, "g");
  // The cursor is its own element on its own layer: moving it every frame must not
  // repaint the SVG of ~10 000 exposure marks.
  const cursor = document.createElement("div");
  const clipRect = document.createElementNS(svgNS, "rect");
  let view = { t0: 0, len: duration };
  let selected = null;

  function buildMarks() {
    const frag = document.createDocumentFragment();
    for (let i = 0; i < nObs; i++) {
      if (obs.tel[i] < 0) continue;
      const r = document.createElementNS(svgNS, "rect");
      r.setAttribute("class", "exp");
      r.setAttribute("x", obs.t[i]); r.setAttribute("width", obs.dur[i]);
      r.setAttribute("y", AXIS_H + ROW_H * (obs.tel[i] + 1) + 3); r.setAttribute("height", ROW_H - 6);
      const colour = STR[obs.alert[i]] ? "#d81b60" : STATE_COLOURS.science;
      r.setAttribute("fill", colour);
      r.setAttribute("stroke", colour);
      r.setAttribute("vector-effect", "non-scaling-stroke");
      r.setAttribute("stroke-width", "1");
      r.dataset.i = i; r.dataset.obsId = obs.id[i];
      frag.appendChild(r);
    }
    marks.appendChild(frag);
    marks.addEventListener("click", (ev) => { if (ev.target.dataset.i !== undefined) showDetail(+ev.target.dataset.i, ev.target); });
    // The marks are placed by a transform of run seconds; the clip keeps them off the labels.
    const defs = document.createElementNS(svgNS, "defs");
    const clip = document.createElementNS(svgNS, "clipPath");
    clip.id = "tl-plot-clip";
    clipRect.setAttribute("y", 0); clipRect.setAttribute("height", rowsH); clipRect.setAttribute("x", LABEL_W);
    clip.appendChild(clipRect); defs.appendChild(clip); svg.appendChild(defs);
    const plot = document.createElementNS(svgNS, "g");
    plot.setAttribute("clip-path", "url(#tl-plot-clip)");
    plot.appendChild(marks);
    svg.appendChild(plot);
    svg.appendChild(events);
    cursor.id = "tl-cursor";
    cursor.style.top = AXIS_H - 4 + "px"; cursor.style.height = rowsH - AXIS_H + 4 + "px";
    byId("timeline-wrap").appendChild(cursor);
  }

  function buildEventMarks() {
    const add = (t, row, shape, colour, text, kind) => {
      const g = document.createElementNS(svgNS, "g");
      g.setAttribute("class", "ev"); g.dataset.t = t; g.dataset.row = row; g.dataset.kind = kind;
      const el = document.createElementNS(svgNS, shape === "diamond" ? "path" : "circle");
      if (shape === "diamond") el.setAttribute("d", "M0,-6 L5,0 L0,6 L-5,0 Z"); else el.setAttribute("r", "4.5");
      el.setAttribute("fill", colour); el.setAttribute("stroke", "#222"); el.setAttribute("stroke-width", "0.8");
      const title = document.createElementNS(svgNS, "title");
      title.textContent = utc(t) + ": " + text;
      g.appendChild(el); g.appendChild(title); events.appendChild(g);
    };
    const ev = D.events;
    for (const j of eventOrder) {
      const kind = STR[ev.kind[j]];
      if (!TIMELINE_MARKED.has(kind)) continue;
      const row = ev.tel[j] >= 0 ? ev.tel[j] + 1 : 0;
      add(ev.t[j], row, "circle", EVENT_COLOURS[kind], eventText(j), kind);
    }
    const ho = D.handoffs;
    for (let j = 0; j < ho.t.length; j++) {
      const to = ho.to[j], from = ho.from[j];
      add(ho.t[j], 0, "diamond", "#d50000", "handoff of " + STR[ho.target[j]] + ": "
        + (from >= 0 ? sites[from].name : "?") + " \u2192 " + (to >= 0 ? sites[to].name : "?"), "handoff");
    }
  }

  let placed = "";
  function placeView() {
    const wrap = byId("timeline-wrap");
    const plotW = Math.max(50, (wrap.clientWidth || 800) - LABEL_W - 8);
    const k = plotW / view.len;
    const key = [view.t0, view.len, plotW].join();
    if (key === placed) return { plotW, k };
    placed = key;
    marks.setAttribute("transform", `translate(${LABEL_W - view.t0 * k},0) scale(${k},1)`);
    clipRect.setAttribute("width", plotW + 2);
    for (const g of events.children) {
      const x = LABEL_W + (+g.dataset.t - view.t0) * k;
      const y = AXIS_H + ROW_H * (+g.dataset.row) + ROW_H / 2;
      g.setAttribute("transform", `translate(${x},${y})`);
      g.style.display = x < LABEL_W - 6 || x > LABEL_W + plotW + 6 ? "none" : "";
    }
    return { plotW, k };
  }

  function windowFor(t) {
    const len = +byId("window").value || duration;
    if (len >= duration) return { t0: 0, len: duration };
    if (t >= view.t0 && t < view.t0 + view.len * 0.95 && view.len === len) return view;
    return { t0: Math.max(0, Math.min(duration - len, t - 0.1 * len)), len };
  }

  function drawTimeline(t) {
    const next = windowFor(t);
    const moved = next.t0 !== view.t0 || next.len !== view.len || !drawTimeline.done;
    view = next;
    const { plotW, k } = placeView();
    const X = (s) => LABEL_W + (s - view.t0) * k;
    cursor.style.transform = `translateX(${X(t) - 1}px)`;
    if (!moved && drawTimeline.width === plotW) return;
    drawTimeline.done = true; drawTimeline.width = plotW;
    const canvas = byId("tl-canvas");
    const { ctx, w, h } = fitCanvas(canvas, rowsH);
    ctx.clearRect(0, 0, w, h);
    const v0 = view.t0, v1 = view.t0 + view.len;
    // Hour ticks, or day ticks for long windows.
    const step = view.len > 3 * 86400 ? 86400 : view.len > 86400 ? 6 * 3600 : view.len > 8 * 3600 ? 3600 : 1800;
    const first = Math.ceil((v0 + (meta.t0_mjd % 1) * 86400) / step) * step - (meta.t0_mjd % 1) * 86400;
    ctx.font = "10px system-ui, sans-serif"; ctx.fillStyle = "#555"; ctx.strokeStyle = "#e0e4ea"; ctx.lineWidth = 1;
    for (let s = first; s <= v1; s += step) {
      ctx.beginPath(); ctx.moveTo(X(s), AXIS_H - 3); ctx.lineTo(X(s), h); ctx.stroke();
      const label = utc(s).slice(step >= 86400 ? 5 : 11, step >= 86400 ? 10 : 16);
      ctx.fillText(label, X(s) + 2, 11);
    }
    ctx.fillStyle = "#333"; ctx.font = "11px system-ui, sans-serif";
    ctx.fillText(TOP_ROW, 4, AXIS_H + ROW_H / 2 + 4);
    tels.forEach((tel, ti) => {
      const y0 = AXIS_H + ROW_H * (ti + 1);
      ctx.fillStyle = TEL_COLOURS[ti % TEL_COLOURS.length];
      ctx.fillText(tel.name, 4, y0 + ROW_H / 2 + 4);
      // Day (outside the night window) hatched grey; the night white.
      ctx.fillStyle = "#d3d9e0"; ctx.fillRect(LABEL_W, y0 + 2, plotW, ROW_H - 4);
      ctx.fillStyle = "#ffffff";
      for (const [a, b] of siteNights[tel.site]) {
        if (b < v0 || a > v1) continue;
        ctx.fillRect(X(Math.max(a, v0)), y0 + 2, X(Math.min(b, v1)) - X(Math.max(a, v0)), ROW_H - 4);
      }
      const tl = telTl[ti];
      let j = Math.max(0, lastAtOrBefore(tl, (q) => D.timeline.t[q], v0));
      for (; j < tl.length; j++) {
        const q = tl[j], a = D.timeline.t[q];
        if (a > v1) break;
        const b = a + D.timeline.dur[q];
        if (b < v0) continue;
        ctx.fillStyle = STATE_COLOURS[D.states[D.timeline.state[q]]];
        const xa = X(Math.max(a, v0));
        ctx.fillRect(xa, y0 + 3, Math.max(0.6, X(Math.min(b, v1)) - xa), ROW_H - 6);
      }
    });
    ctx.clearRect(0, 0, LABEL_W - 2, AXIS_H);
  }

  function buildLegend() {
    const parts = ["science", "readout", "slew", "weather", "failure", "idle", "aborted", "calibration"]
      .map((s) => `<span><span class="sw" style="background:${STATE_COLOURS[s]}"></span>${s}</span>`);
    parts.push('<span><span class="sw" style="background:#d81b60"></span>alert follow-up exposure</span>');
    parts.push('<span><span class="sw" style="background:#d3d9e0"></span>day at the site</span>');
    const dots = [["alert_issued", "issued"], ["alert_received", "received"], ["request_released", "sent to a site"],
      ["alert_followed", "followed"], ["alert_detected", "detected"], ["alert_confirmed", "confirmed"]]
      .map(([k, text]) => `<span style="color:${EVENT_COLOURS[k]}">&#9679;</span>&nbsp;${text}`).join(", ");
    parts.push(`<span>alert: ${dots}; &#9670; handoff (hover for details)</span>`);
    const swatch = (colour, text) => `<span class="sw" style="background:${colour}"></span>${text}`;
    parts.push("<span>sites: " + [swatch(SITE_COLOURS.observing, "observing"), swatch(BETWEEN_COLOUR, "observing, " + BETWEEN)]
      .concat(SITE_ORDER.slice(1).map((s) => swatch(SITE_COLOURS[s], s))).join(" ") + "</span>");
    byId("legend").innerHTML = parts.join("");
  }

  // ------------------------------------------------------------------ exposure detail
  function showDetail(i, rect) {
    if (selected) selected.classList.remove("selected");
    selected = rect || null;
    if (selected) selected.classList.add("selected");
    const tel = tels[obs.tel[i]];
    const fmt = (v, d) => (v === null || v === undefined ? "\u2013" : (+v).toFixed(d));
    const rows = [
      ["obs id", obs.id[i]], ["telescope", tel.name], ["site", sites[tel.site].name],
      ["target", STR[obs.target[i]]], ["programme", STR[obs.program[i]]], ["request", STR[obs.request[i]]],
      ["band", STR[obs.band[i]]], ["exposure", fmt(obs.exptime[i], 0) + " s"], ["start", utc(obs.t[i])],
      ["RA, Dec", fmt(obs.ra[i], 3) + "\u00b0, " + fmt(obs.dec[i], 3) + "\u00b0"],
      ["altitude", fmt(obs.alt[i], 1) + "\u00b0"], ["airmass", fmt(obs.airmass[i], 3)],
      ["seeing", fmt(obs.seeing[i], 2) + "\u2033"], ["quality", fmt(obs.quality[i], 3)],
      ["m5", fmt(obs.m5[i], 2)], ["moon separation", fmt(obs.moon_sep[i], 1) + "\u00b0"],
      ["value", fmt(obs.value[i], 3)],
    ];
    if (STR[obs.alert[i]]) {
      rows.push(["alert", STR[obs.alert[i]]], ["transient mag", fmt(obs.transient_mag[i], 2)],
        ["detected", obs.detected[i] ? "yes" : "no"]);
    }
    const box = byId("detail");
    box.innerHTML = "";
    const table = document.createElement("table");
    table.id = "detail-table";
    for (const [k, v] of rows) {
      const tr = table.insertRow();
      tr.insertCell().textContent = k; tr.insertCell().textContent = String(v);
    }
    box.appendChild(table);
    const uri = D.previews[String(obs.id[i])];
    if (uri) {
      const img = document.createElement("img");
      img.alt = "frame preview of exposure " + obs.id[i]; img.src = uri;
      box.appendChild(img);
    } else {
      const p = document.createElement("p"); p.className = "small"; p.id = "preview-note";
      p.textContent = framesLeftOut.has(obs.id[i])
        ? "A frame was rendered for this exposure but left out of this page: the page embeds the previews of "
          + "the first " + D.preview_cap + " rendered frames only. Its file is under RUN/frames/."
        : "No frame was rendered for this exposure (skytwin frame RUN " + obs.id[i] + " --png renders one).";
      box.appendChild(p);
    }
  }

  // ------------------------------------------------------------------ event log
  // One line per event: "alert issued alert-7", "follow-up request alert-7-fu sent to site
  // sutherland", "failure (mount) at lasilla".
  function eventText(j) {
    const ev = D.events, kind = STR[ev.kind[j]], ref = STR[ev.ref[j]];
    const site = ev.site[j] >= 0 ? sites[ev.site[j]].name : "";
    if (kind === "request_released") return EVENT_TEXT[kind] + " " + ref + " sent to site " + (site || "?");
    const what = kind.startsWith("alert") || kind.startsWith("confirm") ? " " + ref : kind === "failure" ? " (" + ref + ")" : "";
    return EVENT_TEXT[kind] + what + (site ? " at " + site : "");
  }
  function buildLog() {
    const items = [];
    const ev = D.events;
    for (const j of eventOrder) items.push([ev.t[j], eventText(j)]);
    const ho = D.handoffs;
    for (let j = 0; j < ho.t.length; j++) {
      items.push([ho.t[j], "handoff: " + STR[ho.target[j]] + " from " + (ho.from[j] >= 0 ? sites[ho.from[j]].name : "?")
        + " to " + (ho.to[j] >= 0 ? sites[ho.to[j]].name : "?")]);
    }
    return items.sort((a, b) => a[0] - b[0]);
  }
  let logShown = -2;
  function updateLog(t) {
    const upto = lastAtOrBefore(logItems, (x) => x[0], t);
    if (upto === logShown) return;
    logShown = upto;
    const list = byId("event-log");
    list.innerHTML = "";
    for (let j = upto; j >= Math.max(0, upto - 9); j--) {
      const li = document.createElement("li");
      li.textContent = utc(logItems[j][0]).slice(5, 16) + " \u2014 " + logItems[j][1] + " (" + hm(t - logItems[j][0]) + " ago)";
      list.appendChild(li);
    }
    if (upto < 0) list.innerHTML = '<li class="small">nothing yet</li>';
  }

  // ------------------------------------------------------------------ clock
  let now = 0, playing = false, lastFrame = null;
  const slider = byId("slider");
  slider.max = duration;
  function render() {
    const states = sites.map((_, k) => siteState(k, now));
    byId("clock").textContent = utc(now);
    drawMap(now, states);
    updateSiteList(now, states);
    drawSky(now, states);
    drawTimeline(now);
    updateLog(now);
  }
  function setTime(t) {
    now = Math.max(0, Math.min(duration, t));
    slider.value = now;
    render();
  }
  function tick(stamp) {
    if (!playing) return;
    if (lastFrame !== null) now += ((stamp - lastFrame) / 1000) * (+byId("speed").value);
    lastFrame = stamp;
    if (now >= duration) { now = duration; setPlaying(false); }
    slider.value = now;
    render();
    if (playing) requestAnimationFrame(tick);
  }
  function setPlaying(on) {
    playing = on;
    lastFrame = null;
    byId("play").innerHTML = on ? "&#10073;&#10073; Pause" : "&#9654; Play";
    if (on) {
      if (now >= duration) now = 0;
      requestAnimationFrame(tick);
    }
  }
  function fillSelect(el, options, chosen) {
    for (const [value, text] of options) {
      const o = document.createElement("option");
      o.value = value; o.textContent = text; o.selected = value === chosen;
      el.appendChild(o);
    }
  }

  function init() {
    byId("title").textContent = meta.name + " \u2014 replay";
    byId("description").textContent = meta.description || "";
    byId("facts").textContent = `${meta.nights} night(s) from ${meta.start}, policy ${meta.policy}, seed ${meta.seed}: `
      + `${nObs} exposures at ${sites.length} site(s), ${D.alerts.id.length} alert(s), ${D.handoffs.t.length} handoff(s)`;
    if (meta.notes) byId("notes").textContent = meta.notes; else byId("notes-box").style.display = "none";
    fillSelect(byId("speed"), [[60, "1 min / s"], [600, "10 min / s"], [1800, "30 min / s"], [3600, "1 h / s"],
      [3 * 3600, "3 h / s"], [12 * 3600, "12 h / s"]], duration > 3 * 86400 ? 3 * 3600 : 1800);
    const windows = [[6 * 3600, "6 h"], [12 * 3600, "12 h"], [86400, "24 h"], [3 * 86400, "3 days"], [duration, "whole run"]]
      .filter(([v]) => v <= duration);
    fillSelect(byId("window"), windows, duration > 1.5 * 86400 ? 86400 : duration);
    byId("window").addEventListener("change", render);
    slider.addEventListener("input", () => { now = +slider.value; render(); });
    byId("play").addEventListener("click", () => setPlaying(!playing));
    document.addEventListener("keydown", (e) => {
      if (e.code === "Space" && e.target.tagName !== "SELECT") { e.preventDefault(); setPlaying(!playing); }
    });
    window.addEventListener("resize", () => { drawTimeline.width = -1; render(); });
    buildMarks();
    buildEventMarks();
    buildLegend();
    const firstObs = nObs ? obs.t[0] : 0;
    setTime(Math.max(0, firstObs - 600));
  }

  init();
  // For scripts and tests: the clock and what the page shows.
  window.replay = {
    setTime, duration,
    siteState: (name) => {
      const k = sites.findIndex((s) => s.name === name);
      const st = siteState(k, now);
      return { state: st.state, phase: st.phase, targets: st.targets };
    },
    alertStatus: (id) => { // issued, followed, detected or confirmed at the clock; null before issued
      const a = visibleAlerts(now).find((x) => x.id === id);
      return a ? a.status : null;
    },
    exposureMarks: () => marks.querySelectorAll("rect.exp").length,
    readyMs: performance.now(), // from navigation start to the first frame drawn
  };
  document.body.dataset.ready = "1";
})();
