"""`archdsl lsp` end to end: pytest-lsp starts the server as a subprocess and a real LSP client drives it.

The expectations come from archdsl itself (what `archdsl.load` says about the same spec), from the
registry (completion) and from the docs' `# → shape` notes (inlay hints), not from copies of the output.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import pytest_lsp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types
from lsp_client import REPO, Session, config, initialize_params
from pytest_lsp import LanguageClient
from test_docs import SHAPE_NOTE, SPECS as DOC_EXAMPLES
from test_properties import ALPHABET, TOKENS, ZOO_TEXTS, mutate

import archdsl
from archdsl.ops import REGISTRY
from archdsl.shapes import fmt_shape
from archdsl.train.config import READERS

pytestmark = pytest.mark.asyncio(loop_scope="module")
SPECS = REPO / "specs"
LIB = SPECS / "lib" / "resnet_blocks.arch"
ERROR, WARNING = types.DiagnosticSeverity.Error, types.DiagnosticSeverity.Warning


@pytest_lsp.fixture(scope="module", config=config())
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(initialize_params())
    yield
    await lsp_client.shutdown_session()


@pytest.fixture(scope="module")
def session(client) -> Session:
    return Session(client)


def position_of(text: str, needle: str, nth: int = 0, offset: int = 0) -> tuple[int, int]:
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    index += offset
    return text.count("\n", 0, index), index - (text.rfind("\n", 0, index) + 1)


async def check(session: Session, tmp_path: Path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    uri = session.open(path)
    diagnostics, _ = await session.diagnostics(uri)
    return uri, diagnostics


# ---- diagnostics ----


async def test_the_zoo_has_the_warnings_check_gives_and_no_error(session):
    for path in sorted(SPECS.glob("*.arch")):
        uri = session.open(path)
        diagnostics, _ = await session.diagnostics(uri)
        expected = [w.message for w in archdsl.load(path).warnings]
        assert [d.message for d in diagnostics] == expected, path.name
        session.close(uri)


async def test_an_unknown_layer_is_an_error_at_its_name_with_a_fix(session, tmp_path):
    uri, diagnostics = await check(session, tmp_path, "typo.arch", "input 3x224x224\nconv3-64 cnov3-64\n")
    (error,) = diagnostics
    assert error.severity == ERROR and "did you mean 'conv'" in error.message
    assert (error.range.start.line, error.range.start.character, error.range.end.character) == (1, 9, 14)
    (action,) = await session.code_actions(uri, error)
    (edit,) = action.edit.changes[uri]
    assert edit.new_text == "conv3" and (edit.range.start.character, edit.range.end.character) == (9, 14)
    session.change(uri, "input 3x224x224\nconv3-64 conv3-64\n")  # the fix applied: the error is gone
    diagnostics, _ = await session.diagnostics(uri)
    assert diagnostics == ()


async def test_syntax_shape_and_option_errors_are_placed_as_check_places_them(session, tmp_path):
    cases = {
        "syntax.arch": "input 3x32x32\nconv3-8 ] relu\n",
        "shape.arch": "input 64x56x56\nresidual< conv3-128 | >\n",
        "option.arch": "input 3x32x32\nconv3-64(padding=1)\n",
        "tensor.arch": "input 3x32x32\nconv3-8 add(@skp) -> skip\n",
    }
    for name, text in cases.items():
        try:
            archdsl.load(text)
        except archdsl.ArchError as err:
            expected = err
        uri, diagnostics = await check(session, tmp_path, name, text)
        (error,) = diagnostics
        span = expected.span
        assert error.message == expected.message, name
        assert (error.range.start.line, error.range.start.character) == (span.line - 1, span.col - 1), name
        assert (error.range.end.line, error.range.end.character) == (span.end_line - 1, span.end_col - 1), name
    uri = (tmp_path / "option.arch").resolve().as_uri()
    (error,) = session.client.diagnostics[uri]
    (action,) = await session.code_actions(uri, error)
    assert action.edit.changes[uri][0].new_text == "pad"


async def test_the_fit_warning_carries_its_arithmetic(session, tmp_path):
    _, diagnostics = await check(session, tmp_path, "alexnet224.arch", "input 3x224x224\nconv11-96/4(pad=valid)\n")
    (warning,) = diagnostics
    assert warning.severity == WARNING
    assert "(224 − 11 + 2·0)/4 + 1 = 54.25" in warning.message and "223 or 227 would fit" in warning.message
    assert (warning.range.start.line, warning.range.start.character, warning.range.end.character) == (1, 0, 22)


async def test_an_error_in_a_used_file_is_shown_at_the_use_line(session, tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.arch").write_text("block b(c) = [conv3-c cnov3-c]\n")
    uri, diagnostics = await check(session, tmp_path, "main.arch",
                                   'network main\nuse "lib/blocks.arch"\ninput 3x32x32\nb(8)\n')
    (error,) = diagnostics
    assert error.range.start.line == 1 and error.range.end.line == 1  # the `use` line
    assert "cnov3" in error.message and "lib/blocks.arch:1:23" in error.message
    (related,) = error.related_information
    assert related.location.uri == (tmp_path / "lib" / "blocks.arch").resolve().as_uri()
    assert related.location.range.start == types.Position(0, 22)


async def test_a_spec_of_billions_of_layers_is_refused_without_blocking(session, tmp_path):
    big = tmp_path / "huge.arch"
    big.write_text("input 3x32x32\n[[[conv3-64] * 1000] * 1000] * 1000\n")
    try:
        archdsl.load(big)
    except archdsl.ArchError as err:
        expected = err.message
    started = time.perf_counter()
    uri = session.open(big)
    (error,), _ = await session.diagnostics(uri)
    assert error.message == expected and "archdsl builds at most 50,000" in error.message
    assert time.perf_counter() - started < 20


async def test_requests_are_answered_while_a_large_spec_is_analysed(session, tmp_path):
    large = tmp_path / "large.arch"
    large.write_text("input 8x8x8\n[conv3-8 relu] * 15000\n")  # 30,000 layers: legal, and seconds to check
    small = tmp_path / "small.arch"
    small.write_text("input 3x8x8\nconv3-8\n")
    small_uri = session.open(small)
    await session.diagnostics(small_uri)
    large_uri = session.open(large)
    answer = await session.hover(small_uri, 1, 2)  # while the large spec is being analysed
    answered = time.perf_counter()
    assert "8x8x8" in answer.contents.value
    diagnostics, arrived = await session.diagnostics(large_uri, timeout=120)
    assert diagnostics == ()
    assert answered < arrived, "the hover waited for the large spec's analysis"


# ---- hover ----


async def test_hover_on_a_token_in_resnet50s_bottleneck(session):
    net = archdsl.load(SPECS / "resnet50.arch")
    session.open(SPECS / "resnet50.arch")
    lib_uri = session.open(LIB)
    await session.diagnostics(lib_uri)
    line, col = position_of(LIB.read_text(), "conv3-width/s(groups=groups)", offset=2)
    text = (await session.hover(lib_uri, line, col)).contents.value
    conv2 = [layer for layer in net.layers if layer.token == "conv3-width/s(groups=groups)"]
    assert f"{len(conv2)} layers in resnet50" in text
    for layer in conv2:  # every layer the token became, with its shapes, params, MACs, RF and jump
        inputs = fmt_shape(net.layer(layer.inputs[0]).shape)
        assert (f"| `{layer.name}` | `{layer.op.describe()}` | {inputs} → {fmt_shape(layer.shape)} | {layer.params:,}"
                f" | {layer.macs:,} | {layer.receptive_field[0]} | {layer.jump[0]} |") in text
    assert f"{sum(l.params for l in conv2):,}" in text


async def test_hover_on_a_layer_a_block_call_and_a_tensor(session):
    path = SPECS / "unet_small.arch"
    text = path.read_text()
    net = archdsl.load(path)
    uri = session.open(path)
    line, col = position_of(text, "deconv2-64/2", offset=3)
    hover = (await session.hover(uri, line, col)).contents.value
    layer = next(l for l in net.layers if l.token == "deconv2-64/2")
    assert f"{fmt_shape(net.layer(layer.inputs[0]).shape)} → **{fmt_shape(layer.shape)}**" in hover
    assert f"params: {layer.params:,} · MACs: {layer.macs:,}" in hover
    line, col = position_of(text, "@enc2", offset=2)
    hover = (await session.hover(uri, line, col)).contents.value
    assert "named at line 11" in hover and f"**{fmt_shape(net.layer('enc2').shape)}**" in hover

    path = SPECS / "resnet50.arch"
    net = archdsl.load(path)
    uri = session.open(path)
    line, col = position_of(path.read_text(), "bottleneck(128, s=2)", offset=1)
    hover = (await session.hover(uri, line, col)).contents.value
    block = next(b for b in net.blocks.values() if b.span and b.span.line == line + 1 and b.name == "bottleneck")
    layers = [l for l in net.layers if block.id in l.scope]
    assert f"| `{block.id}` | 256x56x56 → 512x28x28 | {sum(l.params for l in layers):,}" in hover
    assert "shortcut.conv" in hover  # the expansion


async def test_hover_on_a_train_setting(session, tmp_path):
    uri, _ = await check(session, tmp_path, "train.arch", "input 784\nfc-10\ntrain {\n  optimizer = adam\n}\n")
    hover = (await session.hover(uri, 3, 4)).contents.value
    assert "default: `sgd(momentum=0.9, nesterov=true)`" in hover and "`adamw(beta1, beta2, eps)`" in hover


# ---- completion ----


async def test_completion_offers_every_registered_layer_and_the_blocks(session):
    uri = session.open(SPECS / "resnet50.arch")
    await session.diagnostics(uri)
    labels = {item.label: item for item in (await session.complete(uri, 6, 0)).items}
    assert set(REGISTRY) <= set(labels)
    assert {"basic", "bottleneck", "stem"} <= set(labels)
    assert labels["bottleneck"].insert_text == "bottleneck(${1:c})"
    assert {"residual", "inception", "se", "block", "train"} <= set(labels)


async def test_completion_of_options_with_their_declared_defaults(session, tmp_path):
    uri, _ = await check(session, tmp_path, "options.arch", "input 3x32x32\nconv3-64(dilation=2, \n")
    items = (await session.complete(uri, 1, 21)).items
    conv = REGISTRY["conv"]
    expected = {f"{o.name}=" for o in conv.options if o.name != "dilation"}
    assert {i.label for i in items} == expected
    pad = next(i for i in items if i.label == "pad=")
    assert pad.detail == f"default {conv.options[0].default}"
    session.change(uri, "input 3x32x32\nmaxpool3/2(ceil=")
    items = (await session.complete(uri, 1, 16)).items
    assert [i.label for i in items] == ["false"]


async def test_completion_of_tensor_names_and_train_settings(session, tmp_path):
    text = "input 3x32x32\nconv3-16 -> stem\nconv3-16 -> deep\n{}\ntrain {{\n  \n  optimizer = sgd\n}}\n"
    uri, _ = await check(session, tmp_path, "names.arch", text.format("@"))
    names = [i.label for i in (await session.complete(uri, 3, 1)).items]  # no tree yet: names from the text
    assert names == ["input", "stem", "deep"]
    session.change(uri, text.format(""))  # as typing goes: a version that checks, then one that does not yet
    await session.diagnostics(uri)
    session.change(uri, text.format("@"))
    names = {i.label: i.detail for i in (await session.complete(uri, 3, 1)).items}
    assert names == {"input": "3x32x32", "stem": "16x32x32", "deep": "16x32x32"}
    keys = {i.label for i in (await session.complete(uri, 5, 2)).items}
    assert keys == set(READERS)
    values = {i.label for i in (await session.complete(uri, 6, 14)).items}
    assert {"sgd(momentum, nesterov, dampening)", "adam(beta1, beta2, eps)"} <= values


# ---- navigation ----


async def test_definition_of_a_block_call_a_tensor_and_a_use_path(session):
    path = SPECS / "resnet50.arch"
    text = path.read_text()
    uri = session.open(path)
    (location,) = await session.definition(uri, *position_of(text, "bottleneck(64)"))
    assert location.uri == LIB.as_uri() and location.range.start == types.Position(*position_of(LIB.read_text(), "block bottleneck"))
    (location,) = await session.definition(uri, *position_of(text, "lib/resnet_blocks", offset=2))
    assert location.uri == LIB.as_uri()
    unet = SPECS / "unet_small.arch"
    text = unet.read_text()
    uri = session.open(unet)
    (location,) = await session.definition(uri, *position_of(text, "@enc1", offset=1))
    assert location.uri == uri and location.range.start == types.Position(*position_of(text, "-> enc1"))


async def test_symbols_list_blocks_tensors_and_outputs(session):
    path = SPECS / "googlenet.arch"
    uri = session.open(path)
    symbols = {s.name: s for s in await session.symbols(uri)}
    assert {"googlenet", "input", "inception_module", "auxiliary", "@inception_4a", "@inception_4d", "train"} - {
        "train"} <= set(symbols)
    net = archdsl.load(path)
    for output, shape in net.outputs.items():
        assert symbols[f"output {output}"].detail == fmt_shape(shape)
    assert symbols["inception_module"].detail == "inception_module(c1, r3, c3, r5, c5, pool_proj)"


# ---- inlay hints ----


async def test_inlay_hints_state_the_docs_shape_notes(session, tmp_path):
    """Every `# → shape` note in docs/language.md's examples is what the hint on its line says."""
    checked = 0
    for n, example in enumerate(e for e in DOC_EXAMPLES if e.kind in ("arch", "arch-warning") and "use" not in e.text):
        uri, _ = await check(session, tmp_path, f"doc{n}.arch", example.text)
        hints = {h.position.line: h.label for h in await session.inlay_hints(uri)}
        for number, line in enumerate(example.text.splitlines()):
            note = SHAPE_NOTE.search(line)
            if note:
                assert hints.get(number) == f"→ {note.group(1)}", f"{example.id} line {number + 1}: {line}"
                checked += 1
        session.close(uri)
    assert checked > 50


async def test_formatting_is_archdsl_fmt(session, tmp_path):
    from archdsl.formatter import format_text

    text = "input 3x8x8\nconv3 - 8   ReLU # x\n"
    uri, _ = await check(session, tmp_path, "messy.arch", text)
    (edit,) = await session.client.text_document_formatting_async(types.DocumentFormattingParams(
        types.TextDocumentIdentifier(uri), types.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert edit.new_text == format_text(text) and edit.range.start == types.Position(0, 0)
    assert edit.range.end == types.Position(2, 0)


async def test_shape_hints_can_be_turned_off(session, tmp_path):
    uri, _ = await check(session, tmp_path, "hints.arch", "input 3x32x32\nconv3-8\n")
    assert [h.label for h in await session.inlay_hints(uri)] == ["→ 8x32x32"]
    settings = lambda on: types.DidChangeConfigurationParams(settings={"archdsl": {"inlayHints": {"shapes": on}}})  # noqa: E731
    session.client.workspace_did_change_configuration(settings(False))
    assert not await session.inlay_hints(uri)
    session.client.workspace_did_change_configuration(settings(True))
    assert len(await session.inlay_hints(uri)) == 1


# ---- bad input ----


def _fuzz_texts(count: int) -> list[str]:
    """Mutated zoo specs and random text, drawn by the property tests' strategies."""
    texts: list[str] = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data):
        kind = data.draw(st.sampled_from(["zoo", "tokens", "characters", "unicode"]))
        if kind == "zoo":
            texts.append(mutate(data, ZOO_TEXTS[data.draw(st.sampled_from(sorted(ZOO_TEXTS)))]))
        elif kind == "tokens":
            texts.append("input 8x16x16\n" + " ".join(data.draw(st.lists(st.sampled_from(TOKENS), max_size=25))))
        elif kind == "characters":
            texts.append("input 3x16x16\n" + data.draw(st.text(alphabet=ALPHABET, max_size=120)))
        else:
            texts.append(data.draw(st.text(max_size=200)))

    draw()
    return texts


async def test_fuzzed_changes_never_kill_the_server(session, tmp_path):
    path = SPECS / "fuzz_scratch.arch"  # beside the zoo, so that `use "lib/…"` resolves; never written
    uri = session.open(path, ZOO_TEXTS["resnet18.arch"])
    for text in _fuzz_texts(60):
        version = session.change(uri, text)
        diagnostics, _ = await session.diagnostics(uri, version)
        for d in diagnostics:
            assert d.range.start.line >= 0 and d.message
        lines = text.split("\n")
        line = len(lines) // 2
        character = len(lines[line]) // 2
        await session.hover(uri, line, character)  # each reply is parsed by the client: a valid LSP message
        await session.complete(uri, line, character)
        await session.inlay_hints(uri)
        await session.symbols(uri)
        await session.definition(uri, line, character)
    session.change(uri, ZOO_TEXTS["lenet5.arch"])
    assert (await session.diagnostics(uri))[0] == ()
    assert not path.exists()


async def test_the_server_imports_neither_torch_nor_tvm():
    import sys

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys, archdsl.lsp.server, archdsl.commands.lsp;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tvm', 'numpy')))",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == "[]"


async def test_a_request_that_does_not_read_is_answered_with_an_error(tmp_path):
    """A hover at a negative position (or with a number for its uri) once got no reply at all, so the
    editor waited for ever, and the log got two tracebacks; bytes that are no JSON got one more."""
    import json
    import os
    import sys

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ARCHDSL_DEBUG", None)
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "archdsl", "lsp", cwd=tmp_path, env=env,
                                                   stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)

    def send(message: bytes) -> None:
        process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(message) + message)

    async def reply() -> dict:
        """The next response (notifications the server sends meanwhile are skipped)."""
        while True:
            length = 0
            while (line := await process.stdout.readline()).strip():
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            message = json.loads(await process.stdout.readexactly(length))
            if "id" in message:
                return message

    hover = {"jsonrpc": "2.0", "method": "textDocument/hover",
             "params": {"textDocument": {"uri": (tmp_path / "a.arch").as_uri()}, "position": {"line": 0, "character": 0}}}
    send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}).encode())
    assert (await asyncio.wait_for(reply(), 30))["id"] == 1
    send(b"{{{ not json")
    send(json.dumps({**hover, "id": 2, "params": {**hover["params"], "position": {"line": -1, "character": -5}}}).encode())
    answer = await asyncio.wait_for(reply(), 30)
    assert answer["id"] == 2 and answer["error"]["code"] == -32602, answer
    assert "textDocument/hover" in answer["error"]["message"]
    send(json.dumps({**hover, "id": 3}).encode())  # and the server still answers
    assert (await asyncio.wait_for(reply(), 30)) == {"jsonrpc": "2.0", "id": 3, "result": None}
    process.stdin.close()
    process.kill()
    log = (await process.communicate())[1].decode()
    assert "Traceback" not in log, log
    assert "a message for 'textDocument/hover' does not read as LSP's" in log
    assert "a message that does not read as JSON-RPC was ignored (JSONDecodeError" in log
