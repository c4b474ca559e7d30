"""Re-copy every `<!-- source: FILE FUNCTION -->` block in spec/ from the code.

Run after changing a function that a spec page includes; then review the
diff of spec/ (the prose around the block may need updating too).
tests/spec/test_spec_sync.py fails until the blocks and the code agree.
"""
import importlib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"(<!-- source: (\S+) (\S+) -->\n```python\n)(.*?)(```)", re.S)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    changed = []
    for page in sorted((ROOT / "spec").rglob("*.md")):
        text = page.read_text()

        def repl(m):
            module = importlib.import_module(m.group(2).removesuffix(".py").replace("/", "."))
            obj = module
            for part in m.group(3).split("."):
                obj = getattr(obj, part)
            return m.group(1) + inspect.getsource(obj) + m.group(5)

        new = MARKER.sub(repl, text)
        if new != text:
            page.write_text(new)
            changed.append(str(page.relative_to(ROOT)))
    print("updated: " + (", ".join(changed) if changed else "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
