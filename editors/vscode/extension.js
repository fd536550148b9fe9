// Starts `archdsl lsp` (archdsl.server.command) for .arch files and passes the settings along.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const settings = vscode.workspace.getConfiguration("archdsl");
  const [command, ...args] = settings.get("server.command", ["archdsl", "lsp"]);
  client = new LanguageClient(
    "archdsl",
    "archdsl",
    { command, args },
    {
      documentSelector: [{ scheme: "file", language: "archdsl" }, { scheme: "untitled", language: "archdsl" }],
      initializationOptions: { inlayHints: { shapes: settings.get("inlayHints.shapes", true) } },
      synchronize: { configurationSection: "archdsl" },
    },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
