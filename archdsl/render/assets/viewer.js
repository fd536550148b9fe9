// archdsl's interactive page: assemble the diagram for the blocks open now, lay it out with
// Graphviz (WebAssembly, inlined above), pan and zoom it, open and close blocks on click, and
// show a layer's or a block's figures in the side panel. Every label and attribute comes from
// the model that archdsl/render/viewer.py wrote; this script only puts the pieces together.
(function () {
  "use strict";

  const model = JSON.parse(document.getElementById("archdsl-model").textContent);
  const canvas = document.getElementById("canvas");
  const panel = document.getElementById("panel");
  const root = document.documentElement;
  const closed = new Set(model.closed);
  let graphviz = null;
  let svg = null;
  let bounds = null; // the whole drawing, in the SVG's own units
  let box = null; // what the window shows: {x, y, w, h}, in the same units
  let pinned = null; // the id of the node or frame clicked last
  let renders = 0;

  document.getElementById("network-name").textContent = model.name;

  // ---- the diagram for the current state ----
  function quote(id) {
    return '"' + id.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
  }

  // The outermost closed block around an item (the item itself when none is).
  function owner(item) {
    let found = item;
    for (let at = item; at !== null && at !== undefined; at = model.parents[at]) {
      if (closed.has(at)) found = at;
    }
    return found;
  }

  function emit(frame, lines) {
    for (const item of model.contents[frame] || []) {
      if (item in model.frames) {
        if (closed.has(item) && item in model.closable) {
          lines.push(model.closable[item]);
        } else {
          lines.push("subgraph " + quote("cluster_" + item) + " {", "graph" + model.frames[item]);
          emit(item, lines);
          lines.push("}");
        }
      } else {
        lines.push(item in model.points ? model.points[item] : model.nodes[item]);
      }
    }
  }

  function dotSource() {
    const lines = ["digraph " + quote(model.name) + " {", model.header];
    emit("", lines);
    const seen = new Set();
    for (const [tail, head, tensor, label, leaving, attrs] of model.edges) {
      const from = owner(tail);
      const to = owner(head);
      const key = from + "\u0000" + to + "\u0000" + tensor;
      if (from === to || seen.has(key)) continue;
      seen.add(key);
      const text = from === tail ? label : leaving; // a closed block's edge out shows its shape
      const parts = [];
      if (text) parts.push("label=" + quote(text));
      if (attrs) parts.push(attrs);
      if (to in model.points) parts.push("arrowhead=none");
      lines.push(quote(from) + " -> " + quote(to) + (parts.length ? " [" + parts.join(" ") + "]" : ""));
    }
    lines.push("}");
    return lines.join("\n");
  }

  // ---- drawing, panning, zooming ----
  function setBox(next) {
    box = next;
    svg.setAttribute("viewBox", [box.x, box.y, box.w, box.h].join(" "));
  }

  function aspect() {
    const rect = canvas.getBoundingClientRect();
    return { w: Math.max(rect.width, 1), h: Math.max(rect.height, 1) };
  }

  // A box around `area` with the window's proportions, so that one unit is as wide as it is high.
  function framing(area, margin) {
    const view = aspect();
    let w = area.w * (1 + margin);
    let h = area.h * (1 + margin);
    if (w / h > view.w / view.h) h = (w * view.h) / view.w;
    else w = (h * view.w) / view.h;
    return { x: area.x + area.w / 2 - w / 2, y: area.y + area.h / 2 - h / 2, w: w, h: h };
  }

  function fit() {
    setBox(framing(bounds, 0.04));
  }

  // Where an element lies, in the SVG's own units.
  function areaOf(element) {
    const b = element.getBBox();
    const m = svg.getScreenCTM().inverse().multiply(element.getScreenCTM());
    const corners = [[b.x, b.y], [b.x + b.width, b.y + b.height]].map(([x, y]) => {
      const p = svg.createSVGPoint();
      p.x = x;
      p.y = y;
      return p.matrixTransform(m);
    });
    return { x: corners[0].x, y: corners[0].y, w: corners[1].x - corners[0].x, h: corners[1].y - corners[0].y };
  }

  function svgPoint(event) {
    const rect = canvas.getBoundingClientRect();
    return { x: box.x + ((event.clientX - rect.left) / rect.width) * box.w,
             y: box.y + ((event.clientY - rect.top) / rect.height) * box.h };
  }

  function zoom(factor, around) {
    const w = box.w * factor;
    const h = box.h * factor;
    setBox({ x: around.x - (around.x - box.x) * factor, y: around.y - (around.y - box.y) * factor, w: w, h: h });
  }

  function draw(focus) {
    const previous = box;
    let text;
    try {
      text = graphviz.dot(dotSource());
    } catch (error) {
      fail("Graphviz could not lay this out: " + error);
      return;
    }
    canvas.innerHTML = text.slice(text.indexOf("<svg"));
    svg = canvas.querySelector("svg");
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    const v = svg.getAttribute("viewBox").split(/[\s,]+/).map(Number);
    bounds = { x: v[0], y: v[1], w: v[2], h: v[3] };
    for (const g of svg.querySelectorAll("g.cluster")) {
      if (closableFor(g.id.replace(/^cluster_/, ""))) g.classList.add("closable");
    }
    const target = focus && (document.getElementById(focus) || document.getElementById("cluster_" + focus));
    if (previous && target) {
      const area = areaOf(target);
      const scaled = framing(bounds, 0.04);
      const w = Math.min(previous.w, scaled.w);
      const h = Math.min(previous.h, scaled.h);
      setBox({ x: area.x + area.w / 2 - w / 2, y: area.y + area.h / 2 - h / 2, w: w, h: h });
    } else {
      fit();
    }
    if (pinned) mark(document.getElementById(pinned));
    renders += 1;
    root.dataset.renders = String(renders);
    root.dataset.state = "ready";
  }

  function fail(message) {
    root.dataset.state = "error";
    canvas.textContent = "";
    const p = document.createElement("p");
    p.id = "status";
    p.textContent = message;
    canvas.appendChild(p);
  }

  // ---- opening and closing ----
  // The block a click on a frame closes: the frame itself, or the block a branch or shortcut belongs to.
  function closableFor(frame) {
    for (let at = frame; at !== null && at !== undefined; at = model.parents[at]) {
      if (at in model.closable) return at;
      if (model.info[at] && model.info[at].type === "stage") return null;
    }
    return null;
  }

  function open(block) {
    closed.delete(block);
    draw(block);
  }

  function close(block) {
    closed.add(block);
    draw(block);
  }

  // ---- the side panel ----
  function element(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function number(n) {
    return Number(n).toLocaleString("en-US");
  }

  function rows(table, pairs) {
    for (const [k, v] of pairs) {
      const tr = element("tr");
      tr.append(element("td", k, "k"), element("td", v, "v"));
      table.appendChild(tr);
    }
  }

  function where(w) {
    const p = element("p");
    if (!w) return p;
    p.append(element("span", w.file + ":" + w.line + "  ", "muted"), element("code", w.text));
    return p;
  }

  function show(id) {
    const info = model.info[id];
    if (!info) return;
    panel.textContent = "";
    panel.dataset.item = id;
    panel.appendChild(element("h2", info.title));
    if (info.type === "layers") {
      if (info.label && info.label !== info.title) panel.appendChild(element("div", info.label, "sub"));
      if (info.layers.length > 1) {
        const t = element("table");
        rows(t, [["output", info.shape], ["params", number(info.totals.params)], ["MACs", number(info.totals.macs)],
                 ["receptive field", info.rf]]);
        panel.appendChild(t);
      }
      for (const layer of info.layers) {
        const div = element("div", null, "layer");
        div.appendChild(element("strong", layer.resolved));
        div.appendChild(element("span", "  " + layer.name + " · " + layer.kind, "muted"));
        const t = element("table");
        const pairs = [["output", layer.shape], ["params", number(layer.params)], ["MACs", number(layer.macs)],
                       ["receptive field", layer.rf]];
        if (layer.token !== layer.resolved) pairs.splice(0, 0, ["written", layer.token]);
        rows(t, pairs);
        div.append(t, where(layer.where));
        panel.appendChild(div);
      }
      return;
    }
    const sub = info.type === "block" ? info.kind + (info.call !== info.title ? " · " + info.call : "") : "stage";
    panel.appendChild(element("div", sub, "sub"));
    const t = element("table");
    rows(t, [["output", info.shape], ["layers", number(info.totals.layers)], ["params", number(info.totals.params)],
             ["MACs", number(info.totals.macs)]].concat(info.rf ? [["receptive field", info.rf]] : []));
    panel.append(t, where(info.where));
    if (info.type === "block") {
      panel.appendChild(element("p", closed.has(id) ? "Click the block to open it." : "Click its frame to close it.", "muted"));
    }
  }

  function mark(target) {
    for (const g of svg.querySelectorAll(".selected")) g.classList.remove("selected");
    if (target) target.classList.add("selected");
  }

  function itemOf(target) {
    const g = target.closest && target.closest("g.node, g.cluster");
    if (!g || !svg.contains(g)) return null;
    return { g: g, id: g.classList.contains("cluster") ? g.id.replace(/^cluster_/, "") : g.id, frame: g.classList.contains("cluster") };
  }

  // ---- events ----
  let drag = null;
  canvas.addEventListener("mousedown", (event) => {
    if (!svg || event.button !== 0) return;
    drag = { x: event.clientX, y: event.clientY, box: box, moved: false };
    canvas.classList.add("dragging");
  });
  window.addEventListener("mousemove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    if (!drag.moved) return;
    const rect = canvas.getBoundingClientRect();
    setBox({ x: drag.box.x - (dx / rect.width) * drag.box.w, y: drag.box.y - (dy / rect.height) * drag.box.h,
             w: drag.box.w, h: drag.box.h });
  });
  window.addEventListener("mouseup", () => {
    canvas.classList.remove("dragging");
    setTimeout(() => { drag = null; }, 0);
  });
  canvas.addEventListener("click", (event) => {
    if (!svg || (drag && drag.moved)) return;
    const item = itemOf(event.target);
    if (!item) return;
    if (!item.frame && closed.has(item.id) && item.id in model.closable) {
      pinned = null;
      open(item.id);
      show(item.id);
      return;
    }
    if (item.frame) {
      const block = closableFor(item.id);
      if (block) {
        pinned = block;
        close(block);
        show(block);
        return;
      }
    }
    pinned = item.id;
    mark(item.g);
    show(item.id);
  });
  canvas.addEventListener("mouseover", (event) => {
    if (!svg) return;
    const item = itemOf(event.target);
    if (item && !(drag && drag.moved)) show(item.id);
  });
  canvas.addEventListener("mouseleave", () => {
    if (pinned) show(pinned);
  });
  canvas.addEventListener("wheel", (event) => {
    if (!svg) return;
    event.preventDefault();
    zoom(Math.exp(event.deltaY * 0.0015), svgPoint(event));
  }, { passive: false });
  canvas.addEventListener("keydown", (event) => {
    if (!svg) return;
    if (event.key === "0") fit();
    if (event.key === "+" || event.key === "=") zoom(0.8, { x: box.x + box.w / 2, y: box.y + box.h / 2 });
    if (event.key === "-") zoom(1.25, { x: box.x + box.w / 2, y: box.y + box.h / 2 });
  });
  window.addEventListener("resize", () => { if (svg) fit(); });
  document.getElementById("fit").addEventListener("click", () => { if (svg) fit(); });
  document.getElementById("open-all").addEventListener("click", () => { closed.clear(); box = null; draw(null); });
  document.getElementById("close-all").addEventListener("click", () => {
    for (const block of model.top) closed.add(block);
    box = null;
    draw(null);
  });

  // ---- start ----
  root.dataset.state = "loading";
  globalThis.ArchdslGraphviz.Graphviz.load().then((loaded) => {
    graphviz = loaded;
    draw(null);
  }).catch((error) => fail("Graphviz (WebAssembly) did not start: " + error));
})();
