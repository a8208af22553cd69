// Entry point for server/static/vendor/codemirror-6/codemirror.min.js (built by build.sh with esbuild as an IIFE).
// The page scripts use CodeMirror only through this one global: window.FanganCM.
import { EditorView, keymap } from "@codemirror/view";
import { EditorState } from "@codemirror/state";
import { basicSetup } from "codemirror";
import { yaml } from "@codemirror/lang-yaml";
import { json } from "@codemirror/lang-json";
import { linter, lintGutter, setDiagnostics, forceLinting } from "@codemirror/lint";
import { autocompletion, completeFromList } from "@codemirror/autocomplete";
import { indentWithTab } from "@codemirror/commands";
import { syntaxTree } from "@codemirror/language";

window.FanganCM = Object.freeze({
  EditorView,
  EditorState,
  basicSetup,
  yaml,
  json,
  linter,
  lintGutter,
  setDiagnostics,
  forceLinting,
  autocompletion,
  completeFromList,
  keymap,
  indentWithTab,
  syntaxTree,
});
