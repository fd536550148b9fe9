"""The interactive page, in a real browser: headless Chromium (Debian's `chromium`, which `make
system-deps` installs) opens the pages of LeNet-5, GoogLeNet and ResNet-152, clicks blocks open and
shut through its own mouse input, reads the side panel, and checks screenshots by structure —
every box the diagram should hold is there, inside the window, showing its colour — not pixel by
pixel. Also: the page is one file that fetches nothing, and `archdsl view` opens it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import archdsl
from archdsl.cli import main
from archdsl.render import render
from archdsl.render.collapse import build_view
from archdsl.render.viewer import GRAPHVIZ_JS, classic_script, model
from chromium import Chromium, executable

REPO = Path(__file__).resolve().parents[1]
READY = "!!document.documentElement && document.documentElement.dataset.renders === '{}'"
RECT = "(id => {{ const r = document.getElementById(id).getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }})({!r})"
NODES = "[...document.querySelectorAll('#canvas g.node')].map(g => g.id)"
CLUSTERS = "[...document.querySelectorAll('#canvas g.cluster')].map(g => g.id)"
OUTSIDE = """(() => {
  const c = document.getElementById('canvas').getBoundingClientRect();
  return [...document.querySelectorAll('#canvas g.node, #canvas g.cluster')].filter(g => {
    const r = g.getBoundingClientRect();
    return r.left < c.left - 0.5 || r.top < c.top - 0.5 || r.right > c.right + 0.5 || r.bottom > c.bottom + 0.5;
  }).map(g => g.id);
})()"""
VIEWBOX = "document.querySelector('#canvas svg').getAttribute('viewBox').split(' ').map(Number)"
PANEL = "document.getElementById('panel').innerText"


@pytest.fixture(scope="module")
def browser():
    if executable() is None:
        pytest.skip("Debian's chromium is not installed (`make system-deps` installs it; it could not here)")
    with Chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pages")
    return {name: render(archdsl.load(REPO / "specs" / f"{name}.arch"), folder / f"{name}.html")
            for name in ("lenet5", "googlenet", "resnet152")}


def open_page(browser, path: Path):
    page = browser.open(path.as_uri())
    page.wait_for(READY.format(1))
    return page


def centre(page, element_id: str) -> tuple[float, float]:
    x, y, w, h = page.evaluate(RECT.format(element_id))
    return x + w / 2, y + h / 2


def click_and_draw(page, x: float, y: float) -> None:
    before = int(page.evaluate("document.documentElement.dataset.renders"))
    page.click(x, y)
    page.wait_for(READY.format(before + 1))


def expected_nodes(net, closed: set[str]) -> set[str]:
    """What the page should draw with `closed` shut, computed from the full view apart from viewer.js."""
    view = build_view(net.graph, compact=True)
    hierarchy = view.hierarchy
    drawn = set()
    for item in [*view.boxes, *view.points]:
        frames = view.frames_around(item)
        shut = [f for f in frames if f in closed]
        drawn.add(shut[-1] if shut else item)  # the outermost closed block, or the box itself
    assert hierarchy is not None
    return drawn


def fill_of(page, element_id: str) -> tuple[int, int, int]:
    colour = page.evaluate(f"document.getElementById({element_id!r}).querySelector('polygon, path').getAttribute('fill')")
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def shows_its_colour(page, element_id: str) -> bool:
    """The screenshot shows the box's fill just inside its left edge (inside an output's double border;
    the text sits further in)."""
    x, y, w, h = page.evaluate(RECT.format(element_id))
    seen = page.pixel(x + min(8, w / 4), y + h / 2)
    return max(abs(a - b) for a, b in zip(seen, fill_of(page, element_id))) <= 12


def png_size(path: Path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])


# ---------------------------------------------------------------- the file itself


def test_the_page_is_one_file_with_the_vendored_graphviz(pages):
    text = pages["lenet5"].read_text(encoding="utf-8")
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|\bhref=", text)  # nothing linked in
    vendored = GRAPHVIZ_JS.read_bytes()
    readme = (GRAPHVIZ_JS.parent / "README.md").read_text(encoding="utf-8")
    assert hashlib.sha256(vendored).hexdigest() in readme  # the file is the package's, unchanged
    assert (GRAPHVIZ_JS.parent / "LICENSE.hpcc-js-Apache-2.0").exists()
    assert (GRAPHVIZ_JS.parent / "LICENSE.graphviz-EPL-1.0").exists()
    assert classic_script(vendored.decode()) in text
    data = json.loads(re.search(r'<script type="application/json" id="archdsl-model">(.*?)</script>', text, re.S).group(1))
    assert data == json.loads(json.dumps(model(archdsl.load(REPO / "specs" / "lenet5.arch"))))


def test_a_spec_line_with_a_closing_script_tag_cannot_break_the_page(tmp_path):
    net = archdsl.load('network t\ninput 3x8x8\nconv3-8   # </script><script>alert(1)</script>\n')
    text = render(net, tmp_path / "t.html").read_text(encoding="utf-8")
    assert text.count("</script>") == 3 and "alert(1)" in text  # the model's, the library's, the viewer's


# ---------------------------------------------------------------- in Chromium


def test_lenet5_draws_every_box_inside_the_window_and_the_panel_tells_a_layer(browser, pages, tmp_path):
    page = open_page(browser, pages["lenet5"])
    net = archdsl.load(REPO / "specs" / "lenet5.arch")
    assert set(page.evaluate(NODES)) == expected_nodes(net, set()) == {
        "input", "conv1", "avgpool1", "conv2", "avgpool2", "conv3", "fc1", "fc2"}
    assert page.evaluate(OUTSIDE) == []
    shot = page.screenshot(tmp_path / "lenet5.png")
    assert png_size(shot) == (browser.width, browser.height)
    assert all(shows_its_colour(page, node) for node in ("conv1", "avgpool1", "fc2"))
    page.hover(*centre(page, "conv1"))
    panel = page.evaluate(PANEL)
    for text in ("conv5-6 · tanh", "6x28x28", "156", "receptive field", "lenet5.arch:"):
        assert text in panel, panel
    layer = net.layer("conv1")
    assert f"{layer.macs:,}" in panel and f"lenet5.arch:{layer.line}" in panel
    print(f"\nchromium: lenet5: {len(page.evaluate(NODES))} boxes drawn, none outside the window; panel: {panel[:40]!r}…")


def test_the_page_fetches_nothing(browser, pages):
    page = browser.open("about:blank")
    page.send("Network.enable")
    page.send("Page.navigate", {"url": pages["lenet5"].as_uri()})
    browser.wait_event("Page.loadEventFired", page.session)
    page.wait_for(READY.format(1))
    requested = [e["params"]["request"]["url"] for e in browser.events
                 if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == page.session]
    assert requested and all(url.startswith(("file://", "data:", "blob:")) for url in requested), requested


def test_googlenet_opens_a_module_on_click_and_closes_it_by_its_frame(browser, pages):
    page = open_page(browser, pages["googlenet"])
    net = archdsl.load(REPO / "specs" / "googlenet.arch")
    modules = [i for i, b in net.blocks.items() if b.name == "inception_module"]
    closed = set(modules) | {i for i, b in net.blocks.items() if b.name == "auxiliary"}
    assert set(page.evaluate(NODES)) == expected_nodes(net, closed)  # opens at depth 1: 9 modules, 2 heads
    assert page.evaluate(OUTSIDE) == []
    module = modules[2]  # inception (4a)
    assert net.graph.labels[module] == "inception (4a)"

    click_and_draw(page, *centre(page, module))
    closed.discard(module)
    assert set(page.evaluate(NODES)) == expected_nodes(net, closed)
    assert f"cluster_{module}" in page.evaluate(CLUSTERS)
    panel = page.evaluate(PANEL)
    params = sum(layer.params for layer in net.layers if module in layer.scope)
    assert "inception (4a)" in panel and f"{params:,}" in panel and "512x14x14" in panel
    assert shows_its_colour(page, f"{module}.b2.conv2")  # a layer inside, drawn where the DOM says

    x, y, w, h = page.evaluate(RECT.format(f"cluster_{module}"))
    click_and_draw(page, x + 6, y + h / 2)  # the frame's own background, left of the branches
    closed.add(module)
    assert set(page.evaluate(NODES)) == expected_nodes(net, closed)
    assert f"cluster_{module}" not in page.evaluate(CLUSTERS)
    print(f"\nchromium: googlenet: {net.graph.labels[module]} opened ({len(expected_nodes(net, closed - {module}))} boxes)"
          f" and closed ({len(page.evaluate(NODES))} boxes) by clicks")


def test_resnet152_opens_at_its_bottlenecks_in_the_papers_stages(browser, pages, tmp_path):
    page = open_page(browser, pages["resnet152"])
    net = archdsl.load(REPO / "specs" / "resnet152.arch")
    bottlenecks = [i for i, b in net.blocks.items() if b.name == "bottleneck"]
    closed = set(bottlenecks) | {"stem1"}
    nodes = set(page.evaluate(NODES))
    assert nodes == expected_nodes(net, closed) and len(set(bottlenecks) & nodes) == 50
    stages = [f"cluster_{s.id}" for s in net.graph.stages.values()]
    assert set(stages) <= set(page.evaluate(CLUSTERS))
    assert page.evaluate(OUTSIDE) == []
    assert png_size(page.screenshot(tmp_path / "resnet152.png")) == (browser.width, browser.height)

    block = bottlenecks[20]  # in conv4_x
    page.evaluate(f"document.getElementById({block!r}).scrollIntoView()")
    click_and_draw(page, *centre(page, block))
    closed.discard(block)
    assert set(page.evaluate(NODES)) == expected_nodes(net, closed)
    # a click on a layer pins it in the panel
    conv = f"{block}.conv2"
    page.click(*centre(page, conv))
    page.wait_for(f"document.getElementById('panel').dataset.item === {conv!r}")
    panel = page.evaluate(PANEL)
    layer = net.layer(conv)
    assert layer.op.describe() == "conv3-256" and layer.token.startswith("conv3-width/s")
    assert "conv3-256" in panel and layer.token in panel  # resolved, and as the block writes it
    assert f"{layer.params:,}" in panel and "conv4_x" in panel and "resnet_blocks.arch:" in panel
    print(f"\nchromium: resnet152: {len(nodes)} boxes at depth 1 in {len(stages)} stage frames, none outside;"
          f" {block} opened, {conv} pinned in the panel")


def test_wheel_zooms_and_drag_pans(browser, pages):
    page = open_page(browser, pages["lenet5"])
    x, y, w, h = page.evaluate("(() => { const r = document.getElementById('canvas').getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()")
    before = page.evaluate(VIEWBOX)
    page.send("Input.dispatchMouseEvent", {"type": "mouseWheel", "x": x + w / 2, "y": y + h / 2, "deltaX": 0, "deltaY": -400})
    page.wait_for(f"{VIEWBOX}[2] < {before[2]}")
    zoomed = page.evaluate(VIEWBOX)
    assert zoomed[2] < before[2] * 0.7
    for kind, dx in (("mousePressed", 0), ("mouseMoved", 60), ("mouseMoved", 120), ("mouseReleased", 120)):
        page.send("Input.dispatchMouseEvent", {"type": kind, "x": x + 40 + dx, "y": y + 40, "button": "left",
                                                "clickCount": 1 if kind != "mouseMoved" else 0})
    panned = page.evaluate(VIEWBOX)
    assert panned[0] < zoomed[0] and panned[2] == zoomed[2]  # moved left by the drag, same zoom
    assert page.evaluate("document.documentElement.dataset.renders") == "1"  # a drag is no click


# ---------------------------------------------------------------- archdsl view


def test_view_writes_the_page_and_opens_it_in_the_browser(tmp_path):
    record = tmp_path / "opened.txt"
    opener = tmp_path / "opener.py"
    opener.write_text(f"import sys; open({str(record)!r}, 'w').write(sys.argv[1])\n")
    env = {**os.environ, "BROWSER": f"{sys.executable} {opener} %s"}
    env.pop("ARCHDSL_DEBUG", None)
    out = tmp_path / "lenet.html"
    done = subprocess.run([sys.executable, "-m", "archdsl", "view", str(REPO / "specs" / "lenet5.arch"), "-o", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert record.read_text() == out.resolve().as_uri()
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")


@pytest.mark.parametrize("args, message", [
    (["-o", "{tmp}/net.svg"], "archdsl view writes an .html page"),
    (["--depth", "0"], "--depth 1 or more"),
], ids=["not-html", "depth-0"])
def test_view_errors(args, message, tmp_path, capsys):
    code = main(["view", str(REPO / "specs" / "lenet5.arch"), "--no-open", *[a.format(tmp=tmp_path) for a in args]])
    assert code == 1 and message in capsys.readouterr().err
