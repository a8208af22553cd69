/* Scheme editors: a definition edited in forms (patrol rules, form fields, score items, workflow states and
   transitions) or as its YAML source, checked on the server as one types, errors shown beside what caused them.
   The page carries the definition as JSON (#editor-config); saving posts it back whole, and the server writes
   only what changed into the file, comments and layout kept. */
(function () {
  "use strict";

  const config = readJson("editor-config");
  const schemas = readJson("editor-schemas");
  const S = (config && config.strings) || readJson("editor-strings") || {};
  const lang = (document.documentElement.lang || "zh").startsWith("en") ? "en" : "zh";

  const nonceMeta = document.querySelector('meta[name="csp-nonce"]');
  const nonce = nonceMeta ? nonceMeta.content : "";

  function readJson(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function csrf() {
    const input = document.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }

  // h("tag.class", {attr: value, onclick: fn}, children...)
  function h(spec, attrs, ...children) {
    const [tag, ...classes] = spec.split(".");
    const el = document.createElement(tag);
    if (classes.length) el.className = classes.join(" ");
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (value === undefined || value === null || value === false) return;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "value") el.value = value;
      else if (key === "checked") el.checked = !!value;
      else el.setAttribute(key, value === true ? "" : value);
    });
    children.flat().forEach((child) => {
      if (child === null || child === undefined || child === false) return;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    });
    return el;
  }

  function text(value) {
    if (value && typeof value === "object") return value[lang] || value.zh || Object.values(value)[0] || "";
    return value == null ? "" : String(value);
  }

  // -- schema lookups (enums for selects, keys for completion) ---------------------------------------------
  // A node is [schema, the file it is in]: a `#/…` reference is read in its own file, `x.json#/…` in x.json.
  function resolve([node, file]) {
    let guard = 0;
    while (node && node.$ref && guard++ < 20) {
      const [target, pointer] = node.$ref.split("#");
      file = target || file;
      node = (pointer || "").split("/").filter(Boolean).reduce((at, part) => (at ? at[part] : undefined), schemas.files[file]);
    }
    return [node || {}, file];
  }

  function rootNode() {
    return [schemas.files[schemas.kind], schemas.kind];
  }

  function child([node, file], part) {
    const [merged, at] = mergeOf(resolve([node, file]));
    if (part === "*") return resolve([merged.items, at]);
    return resolve([(merged.properties || {})[part], at]);
  }

  function enumAt(path) {
    const [node] = resolve(path.reduce(child, rootNode()));
    return node.enum || [];
  }

  // -- state, changes, checks --------------------------------------------------------------------------------
  let data = config ? config.data : null;
  const original = config ? JSON.parse(JSON.stringify(config.data)) : null;

  // The data to send: without the empty lists and maps the editors made to hang controls on, where the file had
  // none (so opening an editor and saving changes nothing, and a new item has no `rules: []`).
  function cleaned(value, before) {
    if (Array.isArray(value)) {
      const olds = Array.isArray(before) ? before : [];
      return value.map((item, i) => cleaned(item, (item && item.id !== undefined
        ? olds.find((old) => old && old.id === item.id) : undefined) || olds[i]));
    }
    if (value && typeof value === "object") {
      const out = {};
      Object.entries(value).forEach(([key, item]) => {
        if (key === "_new") return;  // the editor's own mark of a new item
        const was = before && typeof before === "object" ? before[key] : undefined;
        const empty = (Array.isArray(item) && !item.length) || (item && typeof item === "object" && !Array.isArray(item) && !Object.keys(item).length);
        if (empty && was === undefined) return;
        out[key] = cleaned(item, was);
      });
      return out;
    }
    return value;
  }
  const payload = () => cleaned(data, original);
  let checkTimer = null;
  let previewTimer = null;
  const listeners = [];

  function changed(redraw) {
    if (redraw) draw();
    listeners.forEach((fn) => fn());
    clearTimeout(checkTimer);
    checkTimer = setTimeout(check, 500);
  }

  // One check at a time: a newer one cancels the one still running, and only the latest answer is shown.
  let checking = null;
  async function check() {
    if (checking) checking.abort();
    const mine = checking = new AbortController();
    const box = document.querySelector(".editor-save .live-errors");
    if (box) box.replaceChildren(h("p.muted", {}, S.checking || "Checking…"));
    try {
      const response = await fetch(config.check_url, {
        method: "POST", credentials: "same-origin", signal: mine.signal,
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()},
        body: JSON.stringify({kind: config.kind, key: config.key, data: payload()}),
      });
      if (!response.ok || mine !== checking) return;
      showErrors((await response.json()).errors);
    } catch (error) {
      if (error.name !== "AbortError") throw error;
    }
  }

  function showErrors(errors) {
    document.querySelectorAll(".field-error").forEach((el) => el.remove());
    document.querySelectorAll("[data-path].invalid").forEach((el) => el.classList.remove("invalid"));
    const rest = [];
    errors.forEach((error) => {
      const target = error.file === config.file ? findPath(error.path) : null;
      const message = lang === "zh" ? error.message_zh : error.message;
      if (!target) { rest.push(`${error.file} ${S.line || "line"} ${error.line}: ${error.path ? error.path + ": " : ""}${message}`); return; }
      target.classList.add("invalid");
      const folded = target.closest("details:not([open])");
      if (folded) { folded.open = true; if (folded.dataset.section) openSections.add(folded.dataset.section); }
      target.insertAdjacentElement("afterend", h("span.field-error", {role: "alert"}, message));
    });
    const box = document.querySelector(".editor-save .live-errors");
    if (box) {
      box.replaceChildren(errors.length ? h("p.status-bad", {}, S.errors_found || "Errors")
        : h("p.status-ok", {}, S.no_errors || "No errors"));
      if (rest.length) box.append(h("ol.errors", {}, rest.map((line) => h("li", {}, line))));
    }
  }

  function findPath(path) {
    let at = path;
    while (at) {
      const found = document.querySelector(`[data-path="${CSS.escape(at)}"]`);
      if (found) return found;
      at = at.replace(/(\.[^.[\]]+|\[\d+\])$/, "");
      if (at === path) break;
      path = at;
    }
    return null;
  }

  // -- inputs bound to a place in the data -----------------------------------------------------------------
  function input(obj, key, path, opts = {}) {
    const type = opts.type || "text";
    const el = h("input", {type, value: obj[key] == null ? "" : obj[key], "data-path": path,
      "aria-label": opts.label, placeholder: opts.placeholder, size: opts.size, class: opts.cls,
      step: type === "number" ? "any" : undefined});  // 0.5 points is a number too
    el.addEventListener("input", () => {
      if (type === "number") {
        if (el.value === "") delete obj[key]; else obj[key] = Number(el.value);
      } else if (el.value === "" && opts.dropEmpty) delete obj[key];
      else obj[key] = el.value;
      changed(false);
    });
    return el;
  }

  // Ids the file already had are read-only here: other definitions refer to them (rename one in the source, with
  // everything that names it). A new item's id is typed, and the pickers follow once it is.
  const knownIds = new Set();
  (function collect(node) {
    if (Array.isArray(node)) node.forEach(collect);
    else if (node && typeof node === "object") {
      if (typeof node.id === "string") knownIds.add(node.id);
      Object.values(node).forEach(collect);
    }
  })(original);

  function idInput(obj, path, size = 14) {
    if (knownIds.has(obj.id) && obj.id !== undefined && !obj._new) {
      return h("code.id", {"data-path": `${path}.id`, title: S.id_locked || ""}, obj.id);
    }
    obj._new = true;
    return input(obj, "id", `${path}.id`, {size, label: S.id, placeholder: S.id});
  }

  // `options`: [value, label] pairs, or a function giving them (asked again whenever the list is opened, so ids
  // typed since the page was drawn are offered).
  function select(obj, key, path, options, opts = {}) {
    const fill = () => {
      const list = typeof options === "function" ? options() : options;
      el.replaceChildren(...[opts.empty !== undefined ? h("option", {value: ""}, opts.empty) : null,
        ...list.map(([value, label]) => h("option", {value}, label))].filter(Boolean));
      el.value = obj[key] == null ? "" : obj[key];
    };
    const el = h("select", {"data-path": path, "aria-label": opts.label});
    fill();
    if (typeof options === "function") { el.addEventListener("focus", fill); el.addEventListener("mousedown", fill); }
    el.addEventListener("change", () => {
      if (el.value === "" && opts.empty !== undefined) delete obj[key]; else obj[key] = el.value;
      changed(!!opts.redraw);
    });
    return el;
  }

  // A yes/no whose default (`dflt`) is left unwritten.
  function check_box(obj, key, path, label, dflt = false) {
    const el = h("input", {type: "checkbox", checked: obj[key] === undefined ? dflt : !!obj[key], "data-path": path});
    el.addEventListener("change", () => { if (el.checked === dflt) delete obj[key]; else obj[key] = el.checked; changed(false); });
    return h("label.inline", {}, el, " ", label);
  }

  // A text in two languages, or a plain one (kept plain until English is given). Its other languages (an
  // imported form's `fr` or `bo`) are not edited here, and kept as they are.
  function i18n(obj, key, path, label) {
    const value = obj[key];
    const holder = value && typeof value === "object" ? {...value} : {zh: value == null ? "" : value};
    const write = () => {
      // Every language given, in the order written; a plain text stays plain while Chinese is all it has.
      const given = Object.entries(holder).filter(([, v]) => v);
      const plain = !(value && typeof value === "object") && given.every(([k]) => k === "zh");
      obj[key] = plain ? (holder.zh || "") : (given.length ? Object.fromEntries(given) : {zh: ""});
      changed(false);
    };
    const zh = h("input", {value: holder.zh || "", "data-path": path, "aria-label": `${label} (中文)`, placeholder: "中文"});
    const en = h("input", {value: holder.en || "", "aria-label": `${label} (English)`, placeholder: "English"});
    zh.addEventListener("input", () => { holder.zh = zh.value; write(); });
    en.addEventListener("input", () => { holder.en = en.value; write(); });
    return h("span.i18n", {}, zh, en);
  }

  function button(label, onclick, cls) {
    return h(`button.${cls || "small"}`, {type: "button", onclick}, label);
  }

  function field(label, control) {
    return h("label.editor-field", {}, h("span", {}, label), control);
  }

  function move(list, index, by) {
    const to = index + by;
    if (to < 0 || to >= list.length) return;
    [list[index], list[to]] = [list[to], list[index]];
    changed(true);
  }

  function freshId(list, stem) {
    const ids = new Set(list.map((item) => item && item.id));
    let n = list.length + 1;
    while (ids.has(`${stem}_${n}`)) n += 1;
    return `${stem}_${n}`;
  }

  // Drag and drop within one list (the handles), and the arrow buttons for keyboards.
  function sortable(container, list) {
    let from = null;
    container.addEventListener("dragstart", (event) => {
      const row = event.target.closest("[data-index]");
      if (!row || row.parentElement !== container) return;
      from = Number(row.dataset.index);
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", String(from));
    });
    container.addEventListener("dragover", (event) => { if (from !== null) event.preventDefault(); });
    container.addEventListener("drop", (event) => {
      const row = event.target.closest("[data-index]");
      if (from === null || !row || row.parentElement !== container) return;
      event.preventDefault();
      const to = Number(row.dataset.index);
      const [item] = list.splice(from, 1);
      list.splice(to, 0, item);
      from = null;
      changed(true);
    });
  }

  // Remove an item of a list, once the person says yes (named by its name, else its id).
  function removeButton(list, index, label, after) {
    return button(S.remove || "Remove", () => {
      if (!confirm(`${S.remove_confirm || "Remove"} ${label || ""}?`)) return;
      list.splice(index, 1);
      if (after) after();
      changed(true);
    }, "small.danger");
  }

  function rowTools(list, index, label) {
    return h("span.row-tools", {},
      h("span.drag-handle", {draggable: "true", title: S.drag || "Drag", "aria-hidden": "true"}, "⋮⋮"),
      button("↑", () => move(list, index, -1)), button("↓", () => move(list, index, 1)),
      removeButton(list, index, label));
  }

  // -- patrol rules: a table -----------------------------------------------------------------------------------
  function patrolRules(root, rules, base) {
    const per = enumAt([base, "*", "per"]);
    const perNames = S.per || {};
    const table = h("table.table.rules-table", {},
      h("thead", {}, h("tr", {}, [S.rule_name, S.who, S.at_least, S.per_label, S.remind, ""].map((t) => h("th", {}, t || "")))));
    const body = h("tbody");
    rules.forEach((rule, i) => {
      const path = `${base}[${i}]`;
      rule.who = rule.who || {};
      body.append(h("tr", {"data-path": path, "data-rule": rule.id},
        h("td", {}, idInput(rule, path), i18n(rule, "name", `${path}.name`, S.rule_name)),
        h("td", {}, tierPicker(rule.who, `${path}.who`)),
        h("td", {}, input(rule, "at_least", `${path}.at_least`, {type: "number", label: S.at_least, size: 4})),
        h("td", {}, select(rule, "per", `${path}.per`, per.map((p) => [p, perNames[p] || p]), {label: S.per_label})),
        h("td", {}, input(rule, "remind_before_end", `${path}.remind_before_end`, {type: "number", label: S.remind, size: 3})),
        h("td", {}, removeButton(rules, i, text(rule.name) || rule.id))));
    });
    table.append(body);
    root.append(h("section.card", {}, h("h2", {}, S.patrol_rules || "Patrol rules"), table,
      button(S.add_rule || "Add a rule", () => {
        rules.push({id: freshId(rules, "rule"), name: "", who: {tiers: []}, at_least: 1, per: "week"});
        changed(true);
      })));
  }

  function tierPicker(who, path) {
    // The scheme's editor offers its tiers as edited (a tier just added can be ticked at once).
    const tiers = config.kind === "scheme" ? (data.tiers || []).filter((t) => t.id).map((t) => [t.id, t.name])
      : (config.names.tiers || []);
    if (!tiers.length) return h("code", {}, JSON.stringify(who));
    const chosen = new Set(who.tiers || []);
    const box = h("div.tier-picker", {"data-path": path});
    tiers.forEach(([id, name]) => {
      const el = h("input", {type: "checkbox", checked: chosen.has(id), value: id});
      el.addEventListener("change", () => {
        const now = new Set(who.tiers || []);
        if (el.checked) now.add(id); else now.delete(id);
        who.tiers = tiers.map(([t]) => t).filter((t) => now.has(t));
        if (!who.tiers.length) delete who.tiers;
        changed(false);
      });
      box.append(h("label.inline", {}, el, " ", text(name)));
    });
    const others = Object.keys(who).filter((k) => k !== "tiers");
    if (others.length) box.append(h("small.muted", {}, others.map((k) => `${k}: ${(who[k] || []).join(", ")}`).join("; ")));
    return box;
  }

  // -- trees: units, areas, categories --------------------------------------------------------------------------
  // Each node a row of controls (`columns`), its children below it; add a child, move, remove.
  function tree(list, base, columns, fresh, label) {
    const box = h("ol.tree", {"data-path": base});
    list.forEach((node, i) => {
      const path = `${base}[${i}]`;
      const children = node.children || [];
      const row = h("li.tree-node", {"data-index": i, "data-path": path, "data-node": node.id},
        h("div.tree-row", {}, rowTools(list, i, node.id), ...columns(node, path),
          button(S.add_child || "Add below", () => { node.children = children; children.push(fresh(node)); changed(true); })));
      if (children.length) row.append(tree(children, `${path}.children`, columns, fresh, label));
      box.append(row);
    });
    sortable(box, list);
    return box;
  }

  const openSections = new Set();

  function schemeSections(root) {
    const names = config.names;
    const section = (id, title, _open, ...body) => {
      const el = h("details.card.editor-section", {open: openSections.has(id), "data-section": id},
        h("summary", {}, h("h2", {}, title)), ...body);
      el.addEventListener("toggle", () => { if (el.open) openSections.add(id); else openSections.delete(id); });
      return el;
    };
    // Patrol rules first: the change made most often.
    const rules = h("div");
    patrolRules(rules, data.patrol_rules = data.patrol_rules || [], "patrol_rules");
    root.append(rules);

    const tiers = data.tiers = data.tiers || [];
    const tierRows = tiers.map((tier, i) => {
      const path = `tiers[${i}]`;
      return h("tr", {"data-path": path, "data-tier": tier.id},
        h("td", {}, idInput(tier, path)),
        h("td", {}, i18n(tier, "name", `${path}.name`, S.name)),
        h("td", {}, select(tier, "reports_to", `${path}.reports_to`, () => tiers.filter((t) => t !== tier && t.id).map((t) => [t.id, text(t.name) || t.id]), {empty: S.top || "(top)"})),
        h("td", {}, i18n(tier, "held_by", `${path}.held_by`, S.held_by)),
        h("td", {}, select(tier, "role", `${path}.role`, names.roles.map(([id, name]) => [id, text(name)]), {empty: "—"})),
        h("td", {}, kindPicker(tier, "unit_kinds", `${path}.unit_kinds`, names.unit_kinds)),
        h("td", {}, removeButton(tiers, i, text(tier.name) || tier.id)));
    });
    root.append(section("tiers", S.tiers || "Tiers", false,
      h("table.table", {}, h("thead", {}, h("tr", {}, [S.id, S.name, S.reports_to, S.held_by, S.role, S.unit_kinds, ""].map((t) => h("th", {}, t || "")))),
        h("tbody", {}, tierRows)),
      button(S.add_tier || "Add a tier", () => { tiers.push({id: freshId(tiers, "tier"), name: "", reports_to: (tiers[tiers.length - 1] || {}).id}); changed(true); })));

    const unitKinds = names.unit_kinds.map(([id, name]) => [id, text(name)]);
    data.units = data.units || [];
    root.append(section("units", S.units || "Units", false,
      tree(data.units, "units", (node, path) => [
        idInput(node, path, 16),
        select(node, "kind", `${path}.kind`, unitKinds),
        i18n(node, "name", `${path}.name`, S.name)],
      (parent) => ({id: freshId(allNodes(data.units), "unit"), kind: nextKind(unitKinds, parent.kind), name: ""})),
      button(S.add_unit || "Add a unit", () => { data.units.push({id: freshId(allNodes(data.units), "unit"), kind: (unitKinds[0] || [""])[0], name: ""}); changed(true); })));

    const areaKinds = names.area_kinds.map(([id, name]) => [id, text(name)]);
    const units = allNodes(data.units).map((u) => [u.id, text(u.name) || u.id]);
    data.areas = data.areas || [];
    root.append(section("areas", S.areas || "Areas", false,
      h("p.muted", {}, S.areas_hint || ""),
      tree(data.areas, "areas", (node, path) => [
        idInput(node, path, 16),
        select(node, "kind", `${path}.kind`, areaKinds),
        i18n(node, "name", `${path}.name`, S.name),
        select(node, "unit", `${path}.unit`, units, {empty: "—"})],
      (parent) => ({id: freshId(allNodes(data.areas), "area"), kind: nextKind(areaKinds, parent.kind), name: "", unit: parent.unit})),
      button(S.add_area || "Add an area", () => { data.areas.push({id: freshId(allNodes(data.areas), "area"), kind: (areaKinds[0] || [""])[0], name: ""}); changed(true); })));

    data.categories = data.categories || [];
    root.append(section("categories", S.categories || "Categories", false,
      categoryTree(data.categories, "categories")));
  }

  // Ticks from a list of options; `keepOrder`: the list keeps the order it has (a tick adds at its end).
  function kindPicker(obj, key, path, options, keepOrder = false) {
    const chosen = new Set(obj[key] || []);
    const box = h("div.tier-picker", {"data-path": path});
    options.forEach(([id, name]) => {
      const el = h("input", {type: "checkbox", checked: chosen.has(id), value: id});
      el.addEventListener("change", () => {
        const now = new Set(obj[key] || []);
        if (el.checked) now.add(id); else now.delete(id);
        obj[key] = keepOrder ? [...(obj[key] || []).filter((o) => now.has(o)), ...(el.checked && !(obj[key] || []).includes(id) ? [id] : [])]
          : options.map(([o]) => o).filter((o) => now.has(o));
        if (!obj[key].length) delete obj[key];
        changed(false);
      });
      box.append(h("label.inline", {}, el, " ", text(name)));
    });
    return box;
  }

  // The kind a child is likely to be: the next kind of the scheme's list after its parent's (a street's child is a
  // community; a road's, a segment).
  function nextKind(kinds, kind) {
    const i = kinds.findIndex(([id]) => id === kind);
    return (kinds[Math.min(i + 1, kinds.length - 1)] || kinds[0] || [""])[0];
  }

  function allNodes(list, out = []) {
    (list || []).forEach((node) => { out.push(node); allNodes(node.children, out); });
    return out;
  }

  function categoryTree(list, base) {
    const workflows = (config.names.workflows || []).map(([id, name]) => [id, text(name)]);
    return h("div", {},
      tree(list, base, (node, path) => [
        idInput(node, path, 16),
        i18n(node, "name", `${path}.name`, S.name),
        field(S.working_days || "Working days", input(node, "working_days", `${path}.working_days`, {type: "number", size: 4})),
        select(node, "workflow", `${path}.workflow`, workflows, {empty: S.default_workflow || "(default workflow)"}),
        check_box(node, "public", `${path}.public`, S.public || "Public", true)],
      () => ({id: freshId(allNodes(list), "category"), name: ""})),
      button(S.add_category || "Add a category", () => { list.push({id: freshId(allNodes(list), "category"), name: ""}); changed(true); }));
  }

  // -- forms: fields, groups, repeats, rules, a phone preview ------------------------------------------------
  // What each registered field type is, as the server says (a section or a repeat holds fields; a choice field
  // lists its choices).
  const FIELD_TYPES = Object.fromEntries(((config && config.names.field_types) || []).map((t) => [t.name, t]));
  const NESTED = new Set(Object.values(FIELD_TYPES).filter((t) => t.nested).map((t) => t.name));
  const CHOICE_TYPES = new Set(Object.values(FIELD_TYPES).filter((t) => t.choices).map((t) => t.name));

  function formEditor(root) {
    data.fields = data.fields || [];
    const card = h("section.card.form-fields", {}, h("h2", {}, S.fields || "Fields"));
    card.append(fieldList(data.fields, "fields", 0));
    const phone = h("div.phone-frame", {}, h("iframe", {name: "form-preview", title: S.preview || "Preview"}));
    root.append(h("div.form-editor", {}, card, h("aside.preview-pane", {}, h("h2", {}, S.preview || "Preview"), phone)));
    livePreview(config.preview_url, "form-preview");
  }

  function allFields(list, out = []) {
    list.forEach((f) => { out.push(f); if (f && f.fields) allFields(f.fields, out); });
    return out;
  }

  function fieldList(list, base, depth) {
    const types = enumAt(["fields", "*", "type"]);
    const box = h("ol.field-list", {"data-path": base});
    list.forEach((f, i) => {
      const path = `${base}[${i}]`;
      const card = h("li.field-card", {"data-index": i, "data-field": f.id, "data-path": path},
        h("div.field-head", {}, rowTools(list, i, text(f.label) || f.id),
          field(S.id || "Id", idInput(f, path)),
          field(S.type || "Type", select(f, "type", `${path}.type`, (types.length ? types : [f.type]).map((t) => [t, FIELD_TYPES[t] ? `${FIELD_TYPES[t].title} (${t})` : t]), {label: S.type, redraw: true})),
          field(S.label || "Label", i18n(f, "label", `${path}.label`, S.label)),
          check_box(f, "required", `${path}.required`, S.required || "Required")),
        h("div.field-body", {},
          field(S.hint || "Hint", i18n(f, "hint", `${path}.hint`, S.hint)),
          ruleEditor(f, "visible_if", `${path}.visible_if`, S.visible_if || "Shown only when", list, i),
          ruleEditor(f, "required_if", `${path}.required_if`, S.required_if || "Required when", list, i),
          NESTED.has(f.type) ? null : constraintsEditor(f, path),
          CHOICE_TYPES.has(f.type) ? choicesEditor(f, path) : null,
          NESTED.has(f.type) ? h("div.nested", {}, h("h3", {}, f.type === "repeat" ? (S.repeat_fields || "Repeated fields") : (S.group_fields || "Fields of the group")),
            fieldList(f.fields = f.fields || [], `${path}.fields`, depth + 1)) : null));
      box.append(card);
    });
    sortable(box, list);
    const adding = h("div.add-field", {},
      button(S.add_field || "Add a field", () => {
        list.push({id: freshId(allFields(data.fields), "field"), type: "text", label: ""});
        changed(true);
        const drawn = document.querySelector(`ol.field-list[data-path="${CSS.escape(base)}"]`);
        const cards = drawn ? drawn.querySelectorAll(":scope > li.field-card") : [];
        const last = cards[cards.length - 1];
        if (last) { last.scrollIntoView({block: "center"}); last.querySelector("input").focus(); }
      }));
    return h("div", {}, box, adding);
  }

  // A typed value as it is written in an expression: a number as it is, anything else quoted.
  function literalOf(raw) {
    return /^-?\d+(\.\d+)?$/.test(raw) ? raw : `'${raw.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  }

  // Constraints: a check on the value (`value >= 1`) and the message shown when it fails.
  function constraintsEditor(f, path) {
    const list = f.constraints || [];
    const box = h("div.constraints", {"data-path": `${path}.constraints`});
    list.forEach((c, ci) => {
      const cp = `${path}.constraints[${ci}]`;
      box.append(h("div.constraint-row", {"data-path": cp},
        field(S.check || "Check", input(c, "check", `${cp}.check`, {size: 30, cls: "expr"})),
        field(S.message || "Message", i18n(c, "message", `${cp}.message`, S.message)),
        removeButton(list, ci, c.check, () => { if (!list.length) delete f.constraints; })));
    });
    const ops = [[">=", "≥"], ["<=", "≤"], [">", ">"], ["<", "<"], ["!=", "≠"]];
    const op = h("select", {"aria-label": `${S.constraint || "constraint"}: ${S.comparison || "comparison"}`}, ops.map(([v, t]) => h("option", {value: v}, t)));
    const value = h("input", {size: 8, "aria-label": `${S.constraint || "constraint"}: ${S.value || "value"}`, placeholder: S.value || "value"});
    const add = button(S.add_constraint || "Add a constraint", () => {
      const raw = value.value.trim();
      const literal = literalOf(raw);
      f.constraints = list;
      const said = `${S.value_must_be || "The value must be"} ${op.options[op.selectedIndex].text} ${raw}`;
      list.push({check: raw ? `value is None or value ${op.value} ${literal}` : "", message: said});
      changed(true);
    });
    box.append(h("div.rule-picker", {}, h("span.muted", {}, S.value_must_be || "The value must be"), op, value, add));
    return field(S.constraints || "Constraints", box);
  }

  // Choices, one row each: the value stored (a number stays a number) and its label in both languages.
  function choicesEditor(f, path) {
    const list = f.choices = f.choices || [];
    const rows = list.map((c, ci) => {
      const cp = `${path}.choices[${ci}]`;
      const value = h("input", {value: c.value == null ? "" : c.value, size: 10, "data-path": `${cp}.value`,
        "aria-label": `${S.choice_value || "value"} ${ci + 1}`, placeholder: S.choice_value || "value"});
      value.addEventListener("input", () => {
        const numeric = typeof c.value === "number" || (c._new && /^-?\d+$/.test(value.value));
        c.value = numeric && /^-?\d+$/.test(value.value) ? Number(value.value) : value.value;
        changed(false);
      });
      return h("li.choice-row", {"data-path": cp}, value, i18n(c, "label", `${cp}.label`, S.label),
        removeButton(list, ci, text(c.label) || c.value));
    });
    return field(S.choices || "Choices", h("div.choices", {"data-path": `${path}.choices`},
      h("ol.choice-list", {}, rows),
      button(S.add_choice || "Add a choice", () => { list.push({value: "", label: "", _new: true}); changed(true); })));
  }

  // A rule is an expression; the picker writes one from a field, a comparison and a value.
  function ruleEditor(f, key, path, label, siblings, index) {
    const expr = input(f, key, path, {label, size: 40, dropEmpty: true, cls: "expr"});
    const before = siblings.slice(0, index).filter((s) => s && s.id && !NESTED.has(s.type));
    if (!before.length) return field(label, expr);
    const which = h("select", {"aria-label": `${label}: ${S.field || "field"}`}, before.map((s) => h("option", {value: s.id}, `${text(s.label) || s.id} (${s.id})`)));
    const ops = [["==", "="], ["!=", "≠"], [">", ">"], ["<", "<"], ["filled", S.filled || "is filled"], ["empty", S.empty || "is empty"]];
    const op = h("select", {"aria-label": `${label}: ${S.comparison || "comparison"}`}, ops.map(([v, t]) => h("option", {value: v}, t)));
    const value = h("input", {size: 10, "aria-label": `${label}: ${S.value || "value"}`, placeholder: S.value || "value"});
    const choicesOf = () => (siblings.find((s) => s.id === which.value) || {}).choices || [];
    const valueList = h("datalist", {id: `${path}-values`});
    value.setAttribute("list", `${path}-values`);
    const fillValues = () => valueList.replaceChildren(...choicesOf().map((c) => h("option", {value: c.value}, text(c.label))));
    which.addEventListener("change", fillValues);
    fillValues();
    const write = button(S.use_rule || "Use this rule", () => {
      const name = which.value;
      const typed = value.value.trim();
      // A choice's name typed (是) stands for its value (yes): the rule compares stored values.
      const choice = choicesOf().find((c) => String(c.value) === typed || text(c.label) === typed
        || (c.label && typeof c.label === "object" && Object.values(c.label).includes(typed)));
      const raw = choice ? String(choice.value) : typed;
      const literal = literalOf(raw);
      const rule = op.value === "filled" ? `${name} is not None and ${name} != ''`
        : op.value === "empty" ? `${name} is None or ${name} == ''` : `${name} ${op.value} ${literal}`;
      f[key] = rule;
      expr.value = rule;
      changed(false);
    });
    return h("div.rule-editor", {}, field(label, expr), h("div.rule-picker", {}, which, op, value, valueList, write));
  }

  // -- score sheets: sections, items, rules, totals ----------------------------------------------------------
  function scoreSheet(root) {
    const types = enumAt(["sections", "*", "items", "*", "rules", "*", "type"]);
    const typeNames = S.rule_types || {};
    const totals = h("p.totals", {"aria-live": "polite"});
    const showTotals = () => {
      const sum = (data.sections || []).reduce((acc, s) => acc + (Number(s.points) || 0), 0);
      const problems = [];
      if (data.total !== undefined && sum !== Number(data.total)) problems.push(`${S.sections_sum || "Sections add up to"} ${sum} ≠ ${data.total}`);
      (data.sections || []).forEach((s) => {
        const items = (s.items || []).reduce((acc, it) => acc + (Number(it.points) || 0), 0);
        if (s.items && s.items.length && items !== Number(s.points)) problems.push(`${text(s.name) || s.id}: ${S.items_sum || "items add up to"} ${items} ≠ ${s.points}`);
      });
      totals.className = problems.length ? "totals status-bad" : "totals status-ok";
      totals.textContent = problems.length ? problems.join("；") : `${S.total || "Total"} ${sum}`;
    };
    listeners.push(showTotals);
    const card = h("section.card", {}, h("h2", {}, S.sections || "Sections and items"),
      field(S.total || "Total", input(data, "total", "total", {type: "number", size: 5})), totals);
    (data.sections || []).forEach((section, si) => {
      const sp = `sections[${si}]`;
      const items = section.items = section.items || [];
      const block = h("fieldset.section", {"data-path": sp, "data-section": section.id},
        h("legend", {}, text(section.name) || section.id),
        h("div.row", {}, field(S.name || "Name", i18n(section, "name", `${sp}.name`, S.name)),
          field(S.points || "Points", input(section, "points", `${sp}.points`, {type: "number", size: 5}))));
      const list = h("ol.item-list", {});
      items.forEach((item, ii) => {
        const ip = `${sp}.items[${ii}]`;
        const rules = item.rules = item.rules || [];
        const ruleRows = rules.map((rule, ri) => {
          const rp = `${ip}.rules[${ri}]`;
          return h("li.rule-row", {"data-path": rp},
            select(rule, "type", `${rp}.type`, types.map((t) => [t, typeNames[t] || t]), {label: S.rule_type, redraw: true}),
            i18n(rule, "label", `${rp}.label`, S.label),
            field(S.points || "Points", input(rule, "points", `${rp}.points`, {type: "number", size: 4})),
            ...ruleInputs(rule, rp),
            removeButton(rules, ri, text(rule.label) || rule.id));
        });
        list.append(h("li.item-card", {"data-index": ii, "data-path": ip, "data-item": item.id},
          h("div.row", {}, rowTools(items, ii, text(item.name) || item.id), idInput(item, ip, 12),
            field(S.name || "Name", i18n(item, "name", `${ip}.name`, S.name)),
            field(S.points || "Points", input(item, "points", `${ip}.points`, {type: "number", size: 5}))),
          h("ul.rule-list", {}, ruleRows),
          button(S.add_deduction || "Add a deduction rule", () => {
            rules.push({id: freshId(rules, "rule"), type: "per_occurrence", label: "", points: 1});
            changed(true);
          })));
      });
      sortable(list, items);
      block.append(list, button(S.add_item || "Add an item", () => {
        items.push({id: freshId(items, "item"), name: "", points: 1, rules: []});
        changed(true);
      }));
      card.append(block);
    });
    card.append(button(S.add_section || "Add a section", () => {
      data.sections = data.sections || [];
      data.sections.push({id: freshId(data.sections, "section"), name: "", points: 0, items: []});
      changed(true);
    }));
    root.append(card);
    showTotals();
    if (config.dry_run_url) root.append(dryRun());
  }

  // What a rule of each kind reads: a count, or a value past a threshold by steps, or a condition.
  const RULE_INPUTS = {
    per_occurrence: ["count"], graded: ["count"], bonus: ["count"],
    per_step_below: ["value", "threshold", "step"], per_step_above: ["value", "threshold", "step"],
    one_off: ["when"],
  };

  function ruleInputs(rule, rp) {
    const wanted = RULE_INPUTS[rule.type] || ["count"];
    const made = {
      count: () => field(S.count || "Count", input(rule, "count", `${rp}.count`, {size: 24, dropEmpty: true, cls: "expr"})),
      value: () => field(S.rule_value || "Value (a formula)", input(rule, "value", `${rp}.value`, {size: 24, dropEmpty: true, cls: "expr"})),
      threshold: () => field(S.threshold || "Threshold", input(rule, "threshold", `${rp}.threshold`, {type: "number"})),
      step: () => field(S.step || "Step", input(rule, "step", `${rp}.step`, {type: "number"})),
      when: () => field(S.when || "When (a condition)", input(rule, "when", `${rp}.when`, {size: 24, dropEmpty: true, cls: "expr"})),
    };
    return [...wanted.map((key) => made[key]()),
      field(S.cap || "At most", input(rule, "cap", `${rp}.cap`, {type: "number"}))];
  }

  // The sheet as edited, scored on a past month's data: what the change would have given.
  function dryRun() {
    const month = h("input", {type: "month", value: config.last_month, "aria-label": S.month});
    const out = h("div.dry-run-result", {"aria-live": "polite"});
    const run = async () => {
      out.replaceChildren(h("p.muted", {}, "…"));
      const response = await fetch(config.dry_run_url, {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()}, body: JSON.stringify({data: payload(), month: month.value})});
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      out.replaceChildren(...page.body.childNodes);
    };
    return h("section.card.dry-run", {}, h("h2", {}, S.dry_run || "Dry run"),
      h("div.row", {}, field(S.month || "Month", month), button(S.dry_run_button || "Work out", run, "button")), out);
  }

  // -- workflows: states, transitions, and the diagram ---------------------------------------------------
  function workflowEditor(root) {
    const kinds = enumAt(["states", "*", "kind"]);
    const states = data.states = data.states || [];
    const transitions = data.transitions = data.transitions || [];
    const stateOptions = () => states.filter((s) => s.id).map((s) => [s.id, `${text(s.name) || s.id} (${s.id})`]);
    const diagram = h("div.workflow-diagram", {"aria-label": S.diagram || "Diagram"});
    const stateTable = h("table.table", {}, h("thead", {}, h("tr", {}, [S.id, S.name, S.state_kind, ""].map((t) => h("th", {}, t || "")))),
      h("tbody", {}, states.map((s, i) => h("tr", {"data-path": `states[${i}]`, "data-state": s.id},
        h("td", {}, idInput(s, `states[${i}]`, 12)), h("td", {}, i18n(s, "name", `states[${i}].name`, S.name)),
        h("td", {}, select(s, "kind", `states[${i}].kind`, kinds.map((k) => [k, (S.state_kinds || {})[k] || k]))),
        h("td", {}, removeButton(states, i, text(s.name) || s.id))))));
    const transitionTable = h("table.table", {}, h("thead", {}, h("tr", {}, [S.id, S.name, S.from, S.to, ""].map((t) => h("th", {}, t || "")))),
      h("tbody", {}, transitions.map((t, i) => {
        const tp = `transitions[${i}]`;
        const from = Array.isArray(t.from)
          ? input({v: t.from.join(", ")}, "v", `${tp}.from`, {size: 16})
          : select(t, "from", `${tp}.from`, stateOptions);
        if (Array.isArray(t.from)) from.addEventListener("input", () => { t.from = from.value.split(/[,，\s]+/).filter(Boolean); changed(false); });
        return h("tr", {"data-path": tp, "data-transition": t.id},
          h("td", {}, idInput(t, tp, 12)), h("td", {}, i18n(t, "name", `${tp}.name`, S.name)),
          h("td", {}, from), h("td", {}, select(t, "to", `${tp}.to`, stateOptions)),
          h("td", {}, removeButton(transitions, i, text(t.name) || t.id)));
      })));
    root.append(h("section.card", {}, h("h2", {}, S.diagram || "Diagram"), diagram),
      h("section.card", {}, h("h2", {}, S.states || "States"), stateTable,
        button(S.add_state || "Add a state", () => { states.push({id: freshId(states, "state"), name: "", kind: "open"}); changed(true); })),
      h("section.card", {}, h("h2", {}, S.transitions || "Transitions"), transitionTable,
        button(S.add_transition || "Add a transition", () => {
          transitions.push({id: freshId(transitions, "step"), name: "", from: (states[0] || {}).id, to: (states[1] || states[0] || {}).id, who: {capabilities: ["case.dispatch"]}});
          changed(true);
        })));
    let drawn = 0;
    const drawDiagram = async () => {
      const mine = ++drawn;
      const safe = (id) => String(id || "").replace(/[^A-Za-z0-9_]/g, "_") || "_";
      const label = (value) => text(value).replace(/[\r\n:;"#<>{}[\]%]/g, " ").trim();
      const lines = ["stateDiagram-v2"];
      if (data.initial) lines.push(`  [*] --> ${safe(data.initial)}`);
      states.forEach((s) => lines.push(`  ${safe(s.id)} : ${label(s.name) || safe(s.id)}`));
      transitions.forEach((t) => [].concat(t.from || []).forEach((from) => {
        if (from && t.to) lines.push(`  ${safe(from)} --> ${safe(t.to)} : ${label(t.name) || safe(t.id)}`);
      }));
      states.filter((s) => s.kind === "final").forEach((s) => lines.push(`  ${safe(s.id)} --> [*]`));
      diagram.dataset.source = lines.join("\n");
      if (!window.mermaid) { diagram.replaceChildren(h("pre", {}, diagram.dataset.source)); return; }
      try {
        const {svg} = await window.mermaid.render(`wf-${mine}`, diagram.dataset.source);
        if (mine === drawn) {
          diagram.innerHTML = svg.replace(/<style>/, `<style nonce="${nonce}">`);  // Mermaid's own, first
          diagram.dataset.drawn = String(mine);
        }
      } catch (error) {
        if (mine === drawn) diagram.replaceChildren(h("p.status-bad", {}, S.diagram_failed || "The diagram cannot be drawn"), h("pre", {}, diagram.dataset.source));
      }
    };
    if (window.mermaid) {
      window.mermaid.initialize({startOnLoad: false, securityLevel: "strict", theme: "neutral"});
      // Mermaid measures its labels with a <style> it adds while drawing and has no nonce option: give every
      // <style> made on this page the page's nonce (the Content-Security-Policy allows no other inline style).
      const create = Document.prototype.createElement;
      Document.prototype.createElement = function (tag, options) {
        const el = create.call(this, tag, options);
        if (String(tag).toLowerCase() === "style") el.nonce = nonce;
        return el;
      };
    }
    listeners.push(drawDiagram);
    drawDiagram();
  }

  // -- boards: what the public sees on a road, and the printed poster ------------------------------------------
  function boardEditor(root) {
    const show = data.show = data.show || {};
    const sizes = data.sizes = data.sizes || [];
    const shows = Object.keys(S.show || {}).map((key) => check_box(show, key, `show.${key}`, S.show[key], true));
    const sizeRows = sizes.map((size, i) => h("tr", {"data-path": `sizes[${i}]`},
      h("td", {}, idInput(size, `sizes[${i}]`, 10)), h("td", {}, i18n(size, "name", `sizes[${i}].name`, S.name)),
      h("td", {}, input(size, "width_mm", `sizes[${i}].width_mm`, {type: "number"})),
      h("td", {}, input(size, "height_mm", `sizes[${i}].height_mm`, {type: "number"})),
      h("td", {}, removeButton(sizes, i, text(size.name) || size.id))));
    const card = h("section.card", {}, h("h2", {}, S.board || "Board"),
      field(S.name || "Name", i18n(data, "name", "name", S.name)),
      field(S.board_title || "Title", i18n(data, "title", "title", S.board_title)),
      field(S.subtitle || "Subtitle", i18n(data, "subtitle", "subtitle", S.subtitle)),
      field(S.board_tiers || "Tiers", kindPicker(data, "tiers", "tiers", config.names.tiers, true)),
      h("fieldset", {}, h("legend", {}, S.shows || "Shown"), ...shows),
      field(S.phone || "Phone", input(data, "supervision_phone", "supervision_phone", {size: 14, dropEmpty: true})),
      field(S.footer || "Footer", i18n(data, "footer", "footer", S.footer)),
      h("h3", {}, S.sizes || "Sizes"),
      h("table.table", {}, h("thead", {}, h("tr", {}, [S.id, S.name, S.width_mm, S.height_mm, ""].map((t) => h("th", {}, t || "")))),
        h("tbody", {}, sizeRows)),
      button(S.add_size || "Add a size", () => { sizes.push({id: freshId(sizes, "size"), name: "", width_mm: 297, height_mm: 420}); changed(true); }));
    const frame = h("div.poster-frame", {}, h("iframe", {name: "board-preview", title: S.poster || "Board"}));
    root.append(h("div.form-editor", {}, card, h("aside.preview-pane", {}, h("h2", {}, S.poster || "Board"), frame)));
    livePreview(config.board_preview_url, "board-preview");
  }

  // An editor's preview: the definition posted into a frame as it changes (the server draws it, stores nothing).
  function livePreview(url, target) {
    let form = document.querySelector(`form[data-preview-for="${target}"]`);
    const first = !form;
    if (first) {
      form = h("form", {method: "post", action: url, target, hidden: true, "data-preview-for": target},
        h("input", {type: "hidden", name: "csrf_token", value: csrf()}), h("input", {type: "hidden", name: "data"}));
      document.body.append(form);
    }
    const refresh = () => { form.elements.data.value = JSON.stringify(payload()); form.submit(); };
    listeners.push(() => { clearTimeout(previewTimer); previewTimer = setTimeout(refresh, 700); });
    if (first) refresh();
  }

  // -- the page -------------------------------------------------------------------------------------------
  const EDITORS = {
    scheme: schemeSections,
    category_list: (root) => root.append(h("section.card", {}, h("h2", {}, S.categories || "Categories"),
      categoryTree(data.categories = data.categories || [], "categories"))),
    patrol_rules: (root) => patrolRules(root, data.rules = data.rules || [], "rules"),
    form: formEditor,
    score_sheet: scoreSheet,
    workflow: workflowEditor,
    board: boardEditor,
  };

  let root = null;
  function draw() {
    listeners.length = 0;  // each editor listens again as it is drawn
    const keep = root.querySelector(".preview-pane");
    root.replaceChildren();
    EDITORS[config.kind](root);
    if (keep) {
      const fresh = root.querySelector(".preview-pane");
      if (fresh) fresh.replaceWith(keep);  // the phone keeps its page while the fields are drawn again
    }
  }

  function startDefinitionEditor() {
    root = document.querySelector("[data-editor-root]");
    if (!root || !config || !EDITORS[config.kind]) return;
    draw();
    const form = document.getElementById("definition-editor");
    let leaving = false;
    form.addEventListener("submit", () => { leaving = true; form.elements.data.value = JSON.stringify(payload()); });
    // Leaving the page with changes not saved asks first (the browser's own question).
    const start = JSON.stringify(payload());
    window.addEventListener("beforeunload", (event) => {
      if (!leaving && JSON.stringify(payload()) !== start) { event.preventDefault(); event.returnValue = ""; }
    });
    if (config.errors && config.errors.length) showErrors(config.errors);
  }

  // -- the source editor: CodeMirror with the server's checks and the schema's keys ------------------------
  function startSourceEditor() {
    const form = document.querySelector("[data-source-editor]");
    if (!form) return;
    const area = form.querySelector("textarea");
    const box = form.querySelector(".live-errors");
    const url = form.dataset.checkUrl;
    const path = form.dataset.path;
    const cm = window.FanganCM;
    async function serverErrors(value) {
      const response = await fetch(url, {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()}, body: JSON.stringify({path, text: value})});
      if (!response.ok) return [];
      const errors = (await response.json()).errors;
      box.replaceChildren(errors.length ? h("ol.errors", {role: "alert"}, errors.map((e) =>
        h("li", {"data-line": e.file === path ? e.line : ""}, `${e.file} ${S.line || "line"} ${e.line}: ${e.path ? e.path + ": " : ""}${lang === "zh" ? e.message_zh : e.message}`)))
        : h("p.status-ok", {}, S.no_errors || "No errors"));
      return errors;
    }
    if (!cm) {  // no editor library: the plain text area, checked as one types
      let timer = null;
      area.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => serverErrors(area.value), 600); });
      return;
    }
    const lintSource = cm.linter(async (view) => {
      const errors = await serverErrors(view.state.doc.toString());
      return errors.filter((e) => e.file === path).map((e) => {
        const line = view.state.doc.line(Math.min(Math.max(e.line, 1), view.state.doc.lines));
        return {from: line.from, to: line.to, severity: "error", message: `${e.path ? e.path + ": " : ""}${lang === "zh" ? e.message_zh : e.message}`};
      });
    }, {delay: 600});
    const view = new cm.EditorView({
      doc: area.value,
      extensions: [cm.basicSetup, path.endsWith(".json") ? cm.json() : cm.yaml(), cm.lintGutter(), lintSource,
        cm.keymap.of([cm.indentWithTab]), cm.EditorView.cspNonce.of(nonce),
        cm.autocompletion({override: [schemas ? completeKeys : () => null]}),
        cm.EditorView.updateListener.of((update) => { if (update.docChanged) area.value = update.state.doc.toString(); })],
    });
    area.hidden = true;
    area.insertAdjacentElement("afterend", view.dom);
    // Back from a refused save: the editor opens at the first error of this file.
    const refused = (readJson("editor-errors") || []).find((e) => e.file === path);
    if (refused) {
      const line = view.state.doc.line(Math.min(Math.max(refused.line, 1), view.state.doc.lines));
      view.dispatch({selection: {anchor: line.from}, effects: cm.EditorView.scrollIntoView(line.from, {y: "center"})});
      view.focus();
    }
    form.addEventListener("submit", () => { area.value = view.state.doc.toString(); });
    window.fanganSourceView = view;
  }

  // Keys the definition language allows where the cursor is: the YAML path from the indentation above it.
  function completeKeys(context) {
    const word = context.matchBefore(/[A-Za-z_]*/);
    const line = context.state.doc.lineAt(context.pos);
    const before = line.text.slice(0, context.pos - line.from);
    if (!/^\s*(-\s+)?[A-Za-z_]*$/.test(before)) return null;
    const parse = (t) => {
      const m = t.match(/^(\s*)(-\s+)?(?:([A-Za-z_][\w]*)\s*:)?/);
      return {dash: m[2] ? m[1].length : -1, keyCol: m[1].length + (m[2] || "").length, key: m[3] || null};
    };
    const here = parse(before);
    const path = [];
    let c = here.keyCol;
    if (here.dash >= 0) { path.unshift("*"); c = here.dash; }
    for (let n = line.number - 1; n >= 1 && c > 0; n -= 1) {
      const t = context.state.doc.line(n).text;
      if (!t.trim() || t.trim().startsWith("#")) continue;
      const at = parse(t);
      if (at.key !== null && at.keyCol < c) { path.unshift(at.key); c = at.keyCol; }
      if (at.dash >= 0 && at.dash < c) { path.unshift("*"); c = at.dash; }
    }
    const [node, file] = mergeOf(path.reduce(child, rootNode()));
    const options = Object.entries(node.properties || {}).map(([label, spec]) => ({label, type: "property",
      apply: `${label}: `, info: (resolve([spec, file])[0].description || "").slice(0, 200)}));
    if (!options.length) return null;
    return {from: word ? word.from : context.pos, options, validFor: /^[A-Za-z_]*$/};
  }

  // A node with the properties of its allOf/anyOf/oneOf parts (each resolved where it is written).
  function mergeOf([node, file]) {
    [node, file] = resolve([node, file]);
    const parts = [[node, file], ...[...(node.allOf || []), ...(node.anyOf || []), ...(node.oneOf || [])]
      .map((part) => resolve([part, file]))];
    const properties = Object.assign({}, ...parts.map(([p]) => p.properties || {}));
    const withItems = parts.find(([p]) => p.items);
    return [{...node, properties, items: withItems ? withItems[0].items : undefined}, withItems ? withItems[1] : file];
  }

  startDefinitionEditor();
  startSourceEditor();
})();
