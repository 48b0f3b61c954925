"""Check in headless Chromium that every tutorial page of the built site shows its figures.

Run by hand after ``make docs`` (``make docs-check`` runs both); CI does not run it, since it needs
Debian's ``chromium`` (``apt-get install -y chromium``). The site is served on 127.0.0.1 by a
server started here, and each tutorial page is loaded in a same-origin iframe of a small probe page:
when the tutorial has loaded, the probe records every ``<img>`` of the tutorial's cell outputs with
its natural size, and Chromium's ``--dump-dom`` prints the record. A page passes when it has at least
one output image and every image on it decoded to a non-zero size. One screenshot, scrolled to the
first figure of the first tutorial, is saved for a person to look at.

Usage::

    python docs/check_rendered.py [--html docs/_build/html] [--screenshot docs/_build/render-check.png]
"""

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DOCS = Path(__file__).resolve().parent
PROBE_PATH = "/__render_check__.html"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]

# The iframe's load event fires after its (non-lazy) images have loaded or failed, so their natural
# sizes are final when the record is written; the parent's load, and --dump-dom, wait for it.
PROBE_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>
  html, body { margin: 0; height: 100%; }
  iframe { border: 0; width: 100%; height: 100%; }
  #render-check { display: none; }
</style></head><body>
<pre id="render-check"></pre>
<iframe id="page" src="PAGE_URL"></iframe>
<script>
const frame = document.getElementById("page");
frame.addEventListener("load", () => {
  const doc = frame.contentDocument;
  const describe = (img) => ({src: img.getAttribute("src"), complete: img.complete,
                              width: img.naturalWidth, height: img.naturalHeight,
                              lazy: img.loading === "lazy"});
  const outputs = [...doc.querySelectorAll(".cell_output img")];
  const record = {title: doc.title, images: [...doc.images].map(describe), outputs: outputs.map(describe)};
  document.getElementById("render-check").textContent = JSON.stringify(record);
  if (outputs.length) {
    frame.contentWindow.scrollTo(0, outputs[0].getBoundingClientRect().top + frame.contentWindow.scrollY - 120);
  }
});
</script></body></html>
"""


class _Handler(SimpleHTTPRequestHandler):
    """Serves the built site, plus the probe page for ``?page=<path under the site>``."""

    def do_GET(self):
        if self.path.startswith(PROBE_PATH + "?page="):
            page = self.path.split("?page=", 1)[1]
            body = PROBE_PAGE.replace("PAGE_URL", html.escape("/" + page.lstrip("/"))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            super().do_GET()

    def log_message(self, *args):
        pass


def find_chromium():
    """The Chromium executable: $CHROMIUM, else ``chromium`` or ``chromium-browser`` on the PATH."""
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise SystemExit("check_rendered: no Chromium found; install Debian's (apt-get install -y chromium) "
                     "or set CHROMIUM to its path")


def run_chromium(chromium, url, extra, timeout=120):
    """Run headless Chromium on ``url`` with a fresh profile and return its standard output."""
    with tempfile.TemporaryDirectory(prefix="render-check-") as profile:
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited with {done.returncode} on {url}: {done.stderr[-2000:]}")
    return done.stdout


def probe(chromium, base_url, page):
    """The probe's record of one page: its title, all its images and its cell outputs' images."""
    dom = run_chromium(chromium, f"{base_url}{PROBE_PATH}?page={page}",
                       ["--dump-dom", "--virtual-time-budget=20000", "--window-size=1280,900"])
    found = re.search(r'<pre id="render-check">(.*?)</pre>', dom, re.S)
    if not found or not found.group(1).strip():
        raise RuntimeError(f"{page}: the probe wrote no record (did the page load?)")
    return json.loads(html.unescape(found.group(1)))


def problems(record):
    """What is wrong with a page's record: no figure, or an image that did not decode."""
    found = []
    if not record["outputs"]:
        found.append("no <img> in its cell outputs")
    for image in record["images"]:
        if not (image["complete"] and image["width"] > 0 and image["height"] > 0):
            found.append(f"image {image['src']} not rendered ({image['width']}x{image['height']})")
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=DOCS / "_build" / "html", help="the built site")
    parser.add_argument("--screenshot", type=Path, default=DOCS / "_build" / "render-check.png",
                        help="where to save the screenshot of the first tutorial's first figure")
    args = parser.parse_args(argv)
    tutorials = sorted((DOCS.parent / "tutorials").glob("*.ipynb"))
    pages = [f"_generated/tutorials/{notebook.stem}.html" for notebook in tutorials]
    missing = [page for page in pages if not (args.html / page).is_file()]
    if not tutorials or missing:
        raise SystemExit(f"check_rendered: tutorial pages missing under {args.html}: {missing or 'no tutorials'}; "
                         "run `make docs` first")
    chromium = find_chromium()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(args.html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    failures = 0
    try:
        for page in pages:
            record = probe(chromium, base_url, page)
            sizes = ", ".join(f"{image['width']}x{image['height']}" for image in record["outputs"])
            found = problems(record)
            failures += bool(found)
            status = "FAIL" if found else "ok"
            print(f"{status:4} {page}: {len(record['outputs'])} figure(s) [{sizes}]; {len(record['images'])} <img> "
                  f"on the page" + "".join(f"\n     - {problem}" for problem in found))
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        run_chromium(chromium, f"{base_url}{PROBE_PATH}?page={pages[0]}",
                     [f"--screenshot={args.screenshot.resolve()}", "--virtual-time-budget=20000",
                      "--window-size=1280,1000"])
        print(f"screenshot of {pages[0]} at its first figure: {args.screenshot}")
    finally:
        server.shutdown()
    print(f"{len(pages) - failures} of {len(pages)} tutorial pages show their figures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
