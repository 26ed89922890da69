// Prints, as JSON, what the compiled extension (out/extension.js) sends the server when no
// setting is changed from its default: the initializationOptions, and the
// workspace/didChangeConfiguration params after a (no-op) settings change. Run by
// tests/server/test_options.py, which compares both with server/options.py.
"use strict";
const { loadExtension, fireConfigChange, context } = require("./stubs");

async function main() {
  const { extension, vscode, client } = loadExtension({});
  await extension.activate(context());
  const started = client.instances[0];
  await fireConfigChange(vscode, "hone.multiline");
  const sent = {
    initializationOptions: started.clientOptions.initializationOptions(),
    didChangeConfiguration: started.notifications[0].params,
  };
  await extension.deactivate();
  process.stdout.write(JSON.stringify(sent) + "\n");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
