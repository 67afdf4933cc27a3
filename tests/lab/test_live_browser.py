"""The live page in a real browser (headless Chromium): the lab is drawn, "cut ispa-ra" turns the link down in
the drawing and stalls the flow's counter, "restore" brings both back; no token, no page (403)."""

import contextlib
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from testbed.pytest_plugin import deploy_for_test, wait_until

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-isp-site.yaml", name="liweb")]
SHOTS = Path(__file__).resolve().parents[2] / "reports" / "live"


@contextlib.contextmanager
def serving(lab):
    """`mhlab serve` on a random port, with its default tcpseq flow; yields the printed URL."""
    proc = subprocess.Popen([sys.executable, "-m", "testbed.cli", "--run-root", str(lab.rundir.path.parent), "serve",
                             lab.name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(l.startswith(("flow ", "could not")) for l in lines):
        lines.append(proc.stdout.readline().strip())
    url = next((l.split(" live at ")[1] for l in lines if " live at " in l), None)
    try:
        assert url and any(l.startswith("flow tcp1") for l in lines), lines
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


@pytest.fixture
def served(lab):
    with serving(lab) as url:
        yield url


@pytest.fixture(scope="module")
def shim_lab(request):
    """The shim story's lab (two multihomed sites, shim agents), next to the module's default lab."""
    the_lab = deploy_for_test(Path(request.config.rootpath) / "topologies/two-sites-shim.yaml", request.config,
                              name="lishimp")
    yield the_lab
    the_lab.destroy()


@pytest.fixture
def browser():
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        pytest.skip("needs Debian's chromium and chromium-driver (make setup)")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1150"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def status_of(url):
    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_server_refuses_requests_without_its_token(served):
    base, token = served.split("?token=")
    assert status_of(served) == 200
    assert status_of(base) == 403
    assert status_of(f"{base}?token={token[:-2]}xx") == 403
    assert status_of(f"{base}api/plan?token=wrong") == 403
    req = urllib.request.Request(f"{base}api/fault?token=wrong", data=b'{"kind": "isp-down", "words": ["ispa"]}',
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        urllib.request.urlopen(req, timeout=10)
        pytest.fail("a fault request without the token was accepted")
    except urllib.error.HTTPError as exc:
        assert exc.code == 403


def _page(b, link):
    text = lambda element_id: b.find_element(By.ID, element_id).text  # noqa: E731
    svg_class = lambda: b.execute_script(  # noqa: E731
        f"const e = document.getElementById('link-{link}'); return e ? e.getAttribute('class') : null")
    return text, svg_class


def test_cut_and_restore_from_the_page(lab, served, browser):
    b = browser
    b.get(served)
    text, svg_class = _page(b, "ispa-ra")
    wait_until(lambda: svg_class() == "edge up", timeout=30, what="the lab drawn with ispa-ra up")
    assert "ISP ispa" in b.find_element(By.ID, "drawing").text
    wait_until(lambda: b.find_elements(By.ID, "flow-tcp1-delivered") and int(text("flow-tcp1-delivered")) > 100,
               timeout=30, what="the flow delivering")
    assert text("state-ispa-ra") == "up"

    b.find_element(By.ID, "cut-ispa-ra").click()
    wait_until(lambda: text("state-ispa-ra") == "down" and svg_class() == "edge down", timeout=20,
               what="ispa-ra drawn down")
    assert "link-down-ispa-ra" in b.find_element(By.ID, "faults").text
    time.sleep(1.5)
    stalled = int(text("flow-tcp1-delivered"))
    time.sleep(2.5)
    assert int(text("flow-tcp1-delivered")) == stalled, "h1's ISP-A flow cannot cross a cut ispa-ra"
    assert float(text("flow-tcp1-silent").split()[0]) > 3
    SHOTS.mkdir(parents=True, exist_ok=True)
    b.save_screenshot(str(SHOTS / "cut-ispa-ra.png"))

    b.find_element(By.ID, "restore-ispa-ra").click()
    wait_until(lambda: text("state-ispa-ra") == "up" and svg_class() == "edge up", timeout=20, what="ispa-ra back up")
    wait_until(lambda: int(text("flow-tcp1-delivered")) > stalled + 50, timeout=40,
               what="the flow delivering again (TCP retransmits after its back-off)")
    assert text("flow-tcp1-broken") == "0"
    b.save_screenshot(str(SHOTS / "restored.png"))


def test_the_shim_keeps_the_connection_on_the_page(shim_lab, browser):
    """Cut ISP A1's access link under the page's flow hA -> hB (between the ULIDs): the link is drawn down,
    the shim contexts move to ISP A2's locator, and the flow's counter keeps climbing on one connection."""
    b = browser
    with serving(shim_lab) as url:
        b.get(url)
        text, svg_class = _page(b, "ispa1-ra1")
        wait_until(lambda: svg_class() == "edge up", timeout=30, what="the shim lab drawn")
        wait_until(lambda: b.find_elements(By.ID, "flow-tcp1-delivered") and int(text("flow-tcp1-delivered")) > 100,
                   timeout=30, what="the flow delivering")
        assert "translated" not in text("shim")
        b.find_element(By.ID, "cut-ispa1-ra1").click()
        wait_until(lambda: svg_class() == "edge down", timeout=20, what="ispa1-ra1 drawn down")
        wait_until(lambda: "translated" in text("shim"), timeout=20, what="the shim contexts on another locator")
        before = int(text("flow-tcp1-delivered"))
        wait_until(lambda: int(text("flow-tcp1-delivered")) > before + 150, timeout=10,
                   what="the flow delivering through ISP A2")
        assert text("flow-tcp1-broken") == "0" and text("flow-tcp1-conns") == "1"
        assert "2001:db8:a201:" in text("shim")  # hA's locator from ISP A2
        b.execute_script("window.scrollTo(0, 0)")
        SHOTS.mkdir(parents=True, exist_ok=True)
        b.save_screenshot(str(SHOTS / "shim-cut-ispa1-ra1.png"))
        b.find_element(By.ID, "restore-all").click()
        wait_until(lambda: svg_class() == "edge up", timeout=20, what="ispa1-ra1 back up")
