// cpqa review client. Every piece of run data enters the page as text (textContent or text
// nodes via h()), never as HTML, so a transcript or an LLM answer holding markup shows as text.
"use strict";

const state = { me: null, meta: null, clip: null, focus: 0, list: [], view: 0 };
const main = () => document.getElementById("main");

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "value") e.value = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) if (c != null && c !== false) e.append(c);
  return e;
}

function flash(message) {
  const f = document.getElementById("flash");
  f.textContent = message;
  f.hidden = !message;
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const d = data.detail;
    const msg = Array.isArray(d) ? d.map((x) => x.msg).join("; ") : d || r.statusText;
    flash(`${method} ${path}: ${msg}`);
    throw new Error(msg);
  }
  flash("");
  return data;
}

const fmt = (s) => `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}`;
const select = (attrs, options, value) =>
  h("select", attrs, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
// Views load data asynchronously; only the latest one started may draw (a slow reply to an
// earlier view must not replace the page the reviewer has moved on to).
function newView() {
  const id = ++state.view;
  return () => id === state.view;
}
const filters = () => JSON.parse(sessionStorage.getItem("cpqa-filters") || "{}");

// ---- routing -------------------------------------------------------------------------------

async function route() {
  if (!state.meta) {
    state.meta = await api("GET", "/api/me");
    document.getElementById("run").textContent = `run: ${state.meta.run}`;
  }
  state.me = state.meta.reviewer;
  document.getElementById("who").textContent = state.me ? `reviewer: ${state.me}` : "";
  if (!state.me) return showName();
  const hash = location.hash || "#/";
  if (hash.startsWith("#/clip/")) return showClip(decodeURIComponent(hash.slice(7)));
  if (hash === "#/stats") return showStats();
  return showList();
}

function showName() {
  newView();
  const input = h("input", { id: "reviewer-name", maxlength: 64, placeholder: "your name", autofocus: true });
  const save = async (ev) => {
    ev.preventDefault();
    const r = await api("POST", "/api/reviewer", { name: input.value });
    state.meta.reviewer = r.reviewer;
    route();
  };
  main().replaceChildren(h("form", { class: "name", onsubmit: save },
    h("label", { for: "reviewer-name" }, "Who is reviewing? Your name is kept with each decision."),
    input, h("button", { id: "reviewer-save", type: "submit" }, "Start reviewing")));
  input.focus();
}

// ---- clip list ------------------------------------------------------------------------------

async function loadList(f) {
  const q = new URLSearchParams(Object.entries(f).filter(([, v]) => v));
  const data = await api("GET", `/api/clips?${q}`);
  state.list = data.clips.map((c) => c.id);
  return data;
}

async function showList() {
  const current = newView();
  const f = filters();
  const data = await loadList(f);
  if (!current()) return;
  const onFilter = (key) => (ev) => {
    sessionStorage.setItem("cpqa-filters", JSON.stringify({ ...filters(), [key]: ev.target.value }));
    showList();
  };
  const any = [["", "any"]];
  const p = data.progress;
  const bar = h("progress", { max: p.qa || 1, value: p.qa_decided });
  const rows = data.clips.map((c) => h("tr", { dataset: { clip: c.id }, class: c.state.replace(" ", "-") },
    h("td", {}, h("a", { class: "clip-link", href: `#/clip/${encodeURIComponent(c.id)}` }, c.id)),
    h("td", {}, `${fmt(c.start)}–${fmt(c.end)}`),
    h("td", {}, c.emotions.join(", ")), h("td", {}, c.speakers.length ? String(c.speakers.length) : ""),
    h("td", {}, c.types.join(" ")), h("td", {}, `${c.decided}/${c.qa}`), h("td", {}, String(c.human)),
    h("td", {}, c.state)));
  main().replaceChildren(
    h("section", { class: "filters" },
      h("label", {}, "type ", select({ id: "f-type", onchange: onFilter("type") },
        any.concat(state.meta.types.map((t) => [t, t])), f.type || "")),
      h("label", {}, "emotion ", select({ id: "f-emotion", onchange: onFilter("emotion") },
        any.concat(data.emotions.map((e) => [e, e])), f.emotion || "")),
      h("label", {}, "state ", select({ id: "f-state", onchange: onFilter("state") },
        any.concat(state.meta.states.map((x) => [x, x])), f.state || ""))),
    h("p", { id: "progress" }, bar,
      ` You decided ${p.qa_decided} of ${p.qa} generated QA; ${p.clips_reviewed} of ${p.clips} clips reviewed; ` +
      `${p.human} human QA written.`),
    h("table", { id: "clips" },
      h("thead", {}, h("tr", {}, ["clip", "time", "emotions", "speakers", "QA types", "decided", "human", "state"]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, rows)),
    data.clips.length ? "" : h("p", {}, "No clip matches these filters."));
}

// ---- clip page ------------------------------------------------------------------------------

async function showClip(id) {
  const current = newView();
  const data = await api("GET", `/api/clips/${encodeURIComponent(id)}`);
  if (!state.list.length) await loadList(filters());
  if (!current()) return;
  const keepFocus = state.clip && state.clip.clip.id === id;
  state.clip = data;
  if (!keepFocus) state.focus = Math.max(0, data.qa.findIndex((q) => !q.mine));
  const c = data.clip;
  const audio = h("audio", { id: "player", controls: true, preload: "auto", src: data.audio_url });
  main().replaceChildren(
    h("div", { class: "clip-head" },
      h("button", { id: "prev", onclick: () => step(-1) }, "← previous (p)"),
      h("h2", {}, c.id),
      h("span", { class: "muted" }, `${c.recording_id} · ${fmt(c.start)}–${fmt(c.end)}`),
      h("button", { id: "next", onclick: () => step(1) }, "next (n) →")),
    data.audio_url ? audio : h("p", { class: "warn" }, "This clip's audio is not inside the run; it cannot be played."),
    h("div", { class: "columns" },
      h("section", { class: "transcript-panel" },
        h("h3", {}, "Transcript"),
        c.context.before ? h("p", { class: "context" }, "before: ", c.context.before) : "",
        transcript(c, audio),
        c.context.after ? h("p", { class: "context" }, "after: ", c.context.after) : "",
        h("details", {}, h("summary", {}, "tagged transcript (what the LLM saw)"),
          h("pre", { class: "tagged" }, c.tagged_transcript)),
        labels(c)),
      h("section", { class: "qa-panel" },
        h("h3", {}, `Generated QA (${data.qa.length})`),
        data.qa.map((q, i) => qaCard(q, i)),
        h("h3", {}, `Human QA (${data.human.length})`),
        data.human.map(humanCard),
        humanForm(c.id))));
  audio.addEventListener("timeupdate", () => highlight(audio.currentTime + c.start));
  markFocus();
}

function transcript(c, audio) {
  // Consecutive words with the same speaker, emotion and gender form one run under one tag.
  const box = h("div", { class: "transcript" });
  let run = null;
  let key = null;
  for (const w of c.words) {
    const k = [w.speaker, w.emotion, w.gender].join("|");
    if (k !== key) {
      key = k;
      run = h("span", { class: `run emo-${(w.emotion || "none").replace(/[^a-z]/g, "")}` },
        h("span", { class: "tag" }, [w.speaker, w.gender, w.emotion].filter(Boolean).join(" · ") || "untagged"));
      box.append(run);
    }
    run.append(h("span", {
      class: "word", tabindex: 0, dataset: { start: w.start, end: w.end },
      title: `${fmt(w.start)} ${w.emotion || "-"} / ${w.gender || "-"} / ${w.speaker || "-"}`,
      onclick: () => { audio.currentTime = Math.max(0, w.start - c.start); audio.play().catch(() => {}); },
    }, w.word), " ");
  }
  if (!c.words.length) box.append(h("span", { class: "muted" }, "(no words)"));
  return box;
}

function highlight(t) {
  for (const el of document.querySelectorAll(".word")) {
    el.classList.toggle("now", t >= +el.dataset.start && t < +el.dataset.end);
  }
}

function labels(c) {
  const counts = (attr) => {
    const m = {};
    for (const w of c.words) if (w[attr]) m[w[attr]] = (m[w[attr]] || 0) + 1;
    return Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} (${n})`).join(", ") || "-";
  };
  const rows = [["emotion", counts("emotion")], ["gender", counts("gender")], ["speaker", counts("speaker")]];
  const show = (v) => (typeof v === "string" ? v : typeof v === "number" ? String(+v.toFixed(3)) : JSON.stringify(v));
  for (const [k, v] of Object.entries(c.selection || {})) rows.push([`selection.${k}`, show(v)]);
  for (const [k, v] of Object.entries(c.metadata || {})) rows.push([k, show(v)]);
  return h("section", { class: "labels" }, h("h3", {}, "Labels (words tagged)"),
    h("dl", {}, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
}

function turnsView(turns) {
  return h("ol", { class: "turns" }, turns.map((t) => h("li", { class: "turn" },
    h("p", { class: "q" }, h("b", {}, "Q "), t.question), h("p", { class: "a" }, h("b", {}, "A "), t.answer))));
}

function qaCard(q, i) {
  const mine = q.mine ? `you ${q.mine.action}ed${q.mine.reason ? ` (${q.mine.reason})` : ""} · ${q.mine.created}` : "not decided by you";
  const card = h("article", { class: `qa ${q.mine ? q.mine.action : "open"}`, dataset: { qa: q.id, index: i } },
    h("div", { class: "qa-head" },
      h("span", { class: "type" }, q.type),
      q.type !== q.generated_type ? h("span", { class: "muted" }, ` (generated as ${q.generated_type})`) : "",
      h("span", { class: "muted" }, ` ${q.id} · ${q.generator.model || "?"}`),
      q.edited ? h("span", { class: "muted" }, ` · edited by ${q.edited.by}`) : ""),
    turnsView(q.turns),
    h("div", { class: "actions" },
      h("button", { class: "accept", onclick: () => decide(q, { action: "accept" }) }, "Accept (a)"),
      h("button", { class: "reject", onclick: () => openReasons(card, q) }, "Reject (r)"),
      h("button", { class: "edit", onclick: () => openEdit(card, q) }, "Edit (e)"),
      h("span", { class: "mine" }, mine)));
  card.addEventListener("click", (ev) => { if (!ev.target.closest("button, textarea, select")) setFocus(i); });
  return card;
}

function openReasons(card, q) {
  closeForms();
  setFocus(indexOf(q)); // the digit keys reject the focused item
  card.append(h("div", { class: "reasons" }, "Reason: ",
    state.meta.reasons.map((r, n) => h("button", { onclick: () => decide(q, { action: "reject", reason: r }) }, `${n + 1} ${r}`)),
    h("button", { class: "cancel", onclick: closeForms }, "cancel (Esc)")));
}

function turnEditor(turns) {
  const list = h("div", { class: "turn-editor" });
  const add = (t) => list.append(h("div", { class: "turn-edit" },
    h("textarea", { class: "q", rows: 2, placeholder: "question", value: t.question }),
    h("textarea", { class: "a", rows: 2, placeholder: "answer", value: t.answer })));
  turns.forEach(add);
  const read = () => [...list.querySelectorAll(".turn-edit")]
    .map((d) => ({ question: d.querySelector(".q").value, answer: d.querySelector(".a").value }))
    .filter((t, i) => i === 0 || t.question.trim() || t.answer.trim());
  return { list, read, addTurn: () => add({ question: "", answer: "" }) };
}

function openEdit(card, q) {
  closeForms();
  setFocus(indexOf(q));
  const type = select({ class: "type" }, state.meta.types.map((t) => [t, t]), q.type);
  const ed = turnEditor(q.turns);
  const form = h("form", {
    class: "edit-form",
    onsubmit: (ev) => { ev.preventDefault(); decide(q, { action: "edit", type: type.value, turns: ed.read() }); },
  }, h("label", {}, "type ", type), ed.list,
  h("button", { type: "button", onclick: ed.addTurn }, "+ follow-up turn"),
  h("button", { class: "save", type: "submit" }, "Save edit"),
  h("button", { class: "cancel", type: "button", onclick: closeForms }, "cancel"));
  card.append(form);
  form.querySelector("textarea").focus();
}

function closeForms() {
  for (const el of document.querySelectorAll(".reasons, .edit-form")) el.remove();
}

async function decide(q, body) {
  // Move on before the request returns, so a quick second key press judges the next item.
  const at = indexOf(q);
  const next = state.clip.qa.findIndex((x, i) => i > at && !x.mine);
  setFocus(next >= 0 ? next : at);
  await api("POST", `/api/qa/${encodeURIComponent(q.id)}/decision`, body);
  await showClip(state.clip.clip.id);
}

const indexOf = (q) => state.clip.qa.findIndex((x) => x.id === q.id);

function setFocus(i) {
  state.focus = i;
  markFocus();
}

function markFocus() {
  document.querySelectorAll(".qa").forEach((el, i) => el.classList.toggle("focus", i === state.focus));
}

function humanCard(item) {
  return h("article", { class: "human", dataset: { qa: item.id } },
    h("div", { class: "qa-head" }, h("span", { class: "type" }, item.type),
      h("span", { class: "muted" }, ` ${item.id} · by ${item.reviewer} · ${item.created}`),
      h("button", { class: "delete", onclick: async () => {
        await api("DELETE", `/api/human/${encodeURIComponent(item.id)}`);
        showClip(state.clip.clip.id);
      } }, "delete")),
    turnsView(item.turns));
}

function humanForm(clipId) {
  const type = select({ id: "human-type" }, state.meta.types.map((t) => [t, t]), "C");
  const ed = turnEditor([{ question: "", answer: "" }]);
  ed.list.querySelector(".q").id = "human-q";
  ed.list.querySelector(".a").id = "human-a";
  return h("form", {
    class: "human-form",
    onsubmit: async (ev) => {
      ev.preventDefault();
      await api("POST", "/api/human", { clip_id: clipId, type: type.value, turns: ed.read() });
      showClip(clipId);
    },
  }, h("h4", {}, "Write a QA for this clip (human reference set)"), h("label", {}, "type ", type), ed.list,
  h("button", { type: "button", onclick: ed.addTurn }, "+ follow-up turn"),
  h("button", { id: "human-add", type: "submit" }, "Add human QA"));
}

function step(delta) {
  const i = state.list.indexOf(state.clip.clip.id);
  const j = i + delta;
  location.hash = j >= 0 && j < state.list.length ? `#/clip/${encodeURIComponent(state.list[j])}` : "#/";
}

// ---- agreement --------------------------------------------------------------------------------

async function showStats() {
  const current = newView();
  const s = await api("GET", "/api/stats");
  if (!current()) return;
  const num = (x) => (x == null ? "n/a" : x.toFixed(3));
  const types = [...new Set(s.kappa.flatMap((k) => Object.keys(k.per_type)))].sort();
  main().replaceChildren(
    h("h2", {}, "Progress and agreement"),
    h("p", {}, `${s.clips} clips. Generated QA: ${s.qa_decided} of ${s.qa} decided, ${s.qa_accepted} accepted ` +
      `(${s.qa_edited} edited), ${s.qa_rejected} rejected. Human QA: ${s.human} on ${s.clips_with_human} clips.`),
    h("table", { id: "reviewers" },
      h("thead", {}, h("tr", {}, ["reviewer", "accept", "edit", "reject", "human"].map((t) => h("th", {}, t)))),
      h("tbody", {}, s.reviewers.map((r) => h("tr", {},
        [r.name, r.accept, r.edit, r.reject, r.human].map((v) => h("td", {}, String(v))))))),
    h("h3", {}, "Cohen's kappa on accept/reject (an edit counts as accept), per QA type"),
    s.kappa.length ? h("table", { id: "kappa" },
      h("thead", {}, h("tr", {}, ["reviewers", "n", "agreement", "kappa", ...types].map((t) => h("th", {}, t)))),
      h("tbody", {}, s.kappa.map((k) => h("tr", {},
        [`${k.a} / ${k.b}`, String(k.n), num(k.agreement), num(k.kappa),
          ...types.map((t) => (k.per_type[t] ? `${num(k.per_type[t].kappa)} (n=${k.per_type[t].n})` : "-"))]
          .map((v) => h("td", {}, v))))))
      : h("p", { id: "kappa" }, "No two reviewers have judged the same item yet."));
}

// ---- keyboard ---------------------------------------------------------------------------------

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "Escape") return closeForms();
  if (ev.target.closest("input, textarea, select") || !state.clip || !location.hash.startsWith("#/clip/")) return;
  const card = document.querySelectorAll(".qa")[state.focus];
  const q = state.clip.qa[state.focus];
  const reasons = document.querySelector(".reasons");
  const audio = document.getElementById("player");
  if (reasons && /^[1-9]$/.test(ev.key) && q) {
    const r = state.meta.reasons[+ev.key - 1];
    if (r) decide(q, { action: "reject", reason: r });
  } else if (ev.key === "j" || ev.key === "k") {
    setFocus(Math.min(Math.max(0, state.focus + (ev.key === "j" ? 1 : -1)), state.clip.qa.length - 1));
    document.querySelectorAll(".qa")[state.focus]?.scrollIntoView({ block: "nearest" });
  } else if (ev.key === "a" && q) decide(q, { action: "accept" });
  else if (ev.key === "r" && q) openReasons(card, q);
  else if (ev.key === "e" && q) { ev.preventDefault(); openEdit(card, q); }
  else if (ev.key === "n") step(1);
  else if (ev.key === "p") step(-1);
  else if (ev.key === " " && audio) { ev.preventDefault(); audio.paused ? audio.play() : audio.pause(); }
});

window.addEventListener("hashchange", () => route().catch(() => {}));
route().catch(() => {});
