"""The editor files: the TextMate grammar tokenised over the zoo by VS Code's own engine
(vscode-textmate + vscode-oniguruma under node, installed by `make textmate-deps`), with archdsl's
parser saying what each token is; the generated files up to date; the Vim keywords the grammar's."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from archdsl import ast
from archdsl.errors import Source
from archdsl.formatter import _tokens
from archdsl.lsp.analysis import all_nodes
from archdsl.lsp.grammar_words import keywords
from archdsl.lsp.textmate import text as textmate_text
from archdsl.parser import parse

REPO = Path(__file__).resolve().parents[1]
EDITORS = REPO / "editors"
GRAMMAR = EDITORS / "vscode" / "syntaxes" / "archdsl.tmLanguage.json"
ENGINE = REPO / "tests" / "textmate"
NUMBERS = ("INT", "FLOAT", "DIMS")
TRAIN = '''input 784
fc-10 -> scores
train {
  dataset = "data/mnist"   # a folder
  optimizer = sgd(momentum=0.9, nesterov=true)
  augment = [crop(pad=4), flip]
  lr = 1e-3
}
'''


def test_the_textmate_grammar_is_generated_from_the_grammar():
    assert GRAMMAR.read_text() == textmate_text(), "run: python -m archdsl.lsp.textmate > " + str(GRAMMAR)


def test_the_vim_syntax_has_the_grammars_keywords():
    vim = (EDITORS / "vim" / "syntax" / "archdsl.vim").read_text()
    written = set()
    for line in vim.splitlines():
        if line.startswith("syn keyword archdslStatement") or line.startswith("syn keyword archdslComposite"):
            written.update(line.split()[3:])
    assert written == {k.word for k in keywords()}


def test_the_vscode_extension_points_at_its_files():
    package = json.loads((EDITORS / "vscode" / "package.json").read_text())
    (grammar,) = package["contributes"]["grammars"]
    assert (EDITORS / "vscode" / grammar["path"]).resolve() == GRAMMAR
    (language,) = package["contributes"]["languages"]
    assert (EDITORS / "vscode" / language["configuration"]).is_file()
    assert package["contributes"]["configuration"]["properties"]["archdsl.server.command"]["default"] == ["archdsl", "lsp"]
    json.loads((EDITORS / "vscode" / "language-configuration.json").read_text())


@pytest.fixture(scope="module")
def tokenised(tmp_path_factory):
    node = shutil.which("node")
    if node is None or not (ENGINE / "node_modules" / "vscode-textmate").is_dir():
        pytest.skip("node and tests/textmate/node_modules are needed: make textmate-deps")
    extra = tmp_path_factory.mktemp("textmate") / "train.arch"
    extra.write_text(TRAIN)
    files = [*sorted((REPO / "specs").glob("**/*.arch")), extra]
    result = subprocess.run([node, str(ENGINE / "tokenize.mjs"), str(GRAMMAR), *map(str, files)],
                            capture_output=True, text=True, timeout=120, check=True)
    return {Path(name): tokens for name, tokens in json.loads(result.stdout).items()}


def scopes_at(tokens, text: str, line: int, col: int) -> list[str]:
    """The scopes of the character at a 1-based line and column (characters; the engine counts UTF-16)."""
    source_line = text.split("\n")[line - 1]
    unit = len(source_line[: col - 1].encode("utf-16-le")) // 2
    for number, start, end, scopes in tokens:
        if number == line - 1 and start <= unit < end:
            return scopes
    raise AssertionError(f"no token at {line}:{col}")


def test_the_zoo_is_highlighted_as_archdsl_reads_it(tokenised):
    checked = {"layer": 0, "number": 0, "comment": 0, "string": 0, "keyword": 0}
    keyword_types = {t for t in ("NETWORK", "INPUT", "USE", "BLOCK", "AFTER", "DEFAULTS", "TRAIN", "INCEPTION",
                                 "RESIDUAL", "SE")}
    for path, tokens in tokenised.items():
        text = path.read_text()
        spec = parse(Source(str(path), text))
        for node in all_nodes(spec):  # every layer token and block call, as the parser reads them
            if isinstance(node, ast.Layer):
                scopes = scopes_at(tokens, text, node.name_span.line, node.name_span.col)
                assert "entity.name.function.layer.archdsl" in scopes, (path.name, node.text, scopes)
                checked["layer"] += 1
        for token in _tokens(text):
            scopes = scopes_at(tokens, text, token.line, token.col)
            if token.type in NUMBERS:
                assert "constant.numeric.archdsl" in scopes, (path.name, token, scopes)
                checked["number"] += 1
            elif token.type == "STRING":
                assert "string.quoted.double.archdsl" in scopes, (path.name, token, scopes)
                checked["string"] += 1
            elif token.type in keyword_types:
                assert any(s.startswith("keyword.") for s in scopes), (path.name, token, scopes)
                checked["keyword"] += 1
        for number, line in enumerate(text.split("\n"), 1):
            code = re.sub(r'"[^"\n]*"', lambda m: "_" * len(m.group()), line)
            if "#" in code:
                col = code.index("#") + 1
                assert "comment.line.number-sign.archdsl" in scopes_at(tokens, text, number, col), (path.name, line)
                checked["comment"] += 1
    assert all(count > 0 for count in checked.values()), checked


def test_names_and_settings_have_their_scopes(tokenised):
    path = next(p for p in tokenised if p.name == "train.arch")
    tokens, text = tokenised[path], path.read_text()

    def scopes(needle: str, nth: int = 0):
        index = -1
        for _ in range(nth + 1):
            index = text.index(needle, index + 1)
        line = text.count("\n", 0, index) + 1
        return scopes_at(tokens, text, line, index - (text.rfind("\n", 0, index) + 1) + 1)

    assert "variable.other.tensor.definition.archdsl" in scopes("scores")
    assert "variable.other.property.setting.archdsl" in scopes("optimizer")
    assert "support.function.archdsl" in scopes("sgd")
    assert "variable.parameter.option.archdsl" in scopes("momentum")
    assert "constant.language.boolean.archdsl" in scopes("true")
    assert "constant.numeric.archdsl" in scopes("1e-3")
