"""Installing gilprobe like other Linux tools, and reading about it: `make install`/`uninstall`
under DESTDIR and PREFIX, the man page (renders without warnings, names
every option --help names, the version of the binary), and the Debian
package from `make deb` installed with apt into a fresh Debian 12 root
(tests/setup/bookworm_chroot.sh), where it runs."""
import glob
import os
import re
import shutil
import subprocess

from conftest import GILPROBE, ROOT
from interpreters import CACHE

BOOKWORM = os.path.join(CACHE, "bookworm-root")


def version():
    out = subprocess.run([GILPROBE, "--version"], capture_output=True, text=True).stdout
    return out.split()[1]


def test_install_and_uninstall_honour_destdir_and_prefix(tmp_path):
    dest = str(tmp_path / "stage")
    run = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "install", "DESTDIR=" + dest,
                          "PREFIX=/opt/gp"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    binary = os.path.join(dest, "opt/gp/bin/gilprobe")
    man = os.path.join(dest, "opt/gp/share/man/man1/gilprobe.1")
    assert os.access(binary, os.X_OK) and os.path.isfile(man)
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    assert out.stdout.strip() == "gilprobe " + version()
    run = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "uninstall",
                          "DESTDIR=" + dest, "PREFIX=/opt/gp"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert not os.path.exists(binary) and not os.path.exists(man)


def test_man_page_renders_and_documents_every_option():
    page = os.path.join(ROOT, "gilprobe.1")
    lint = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True, text=True)
    assert lint.returncode == 0 and lint.stderr == "", lint.stderr
    text = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                          env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0"))
    assert text.returncode == 0, text.stderr
    rendered = re.sub(r".\x08", "", text.stdout)
    for section in ("NAME", "SYNOPSIS", "COMMANDS", "OPTIONS", "EXIT STATUS", "EXAMPLES"):
        assert "\n" + section in rendered, section
    helptext = subprocess.run([GILPROBE, "--help"], capture_output=True, text=True)
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+|-[a-z])\b", helptext.stdout +
                             helptext.stderr))
    assert len(options) >= 20, options
    man_source = open(page).read().replace("\\-", "-")
    missing = sorted(o for o in options if o not in man_source)
    assert missing == [], missing
    assert '"gilprobe %s"' % version() in man_source  # .TH names this version
    for code in range(10):
        assert re.search(r"^\.B %d$" % code, man_source, re.M), code


def test_the_deb_installs_with_apt_on_fresh_debian_12_and_runs(tmp_path):
    debs = glob.glob(os.path.join(ROOT, "build", "gilprobe_%s.deb" % version()))
    assert debs, "make deb has not built build/gilprobe_%s.deb" % version()
    assert os.path.isdir(BOOKWORM), "run tests/setup/bookworm_chroot.sh"
    root = str(tmp_path / "root")
    subprocess.run(["cp", "-a", "--reflink=auto", BOOKWORM, root], check=True)
    try:
        shutil.copy(debs[0], os.path.join(root, "tmp", "gilprobe.deb"))
        assert not os.path.exists(os.path.join(root, "usr/bin/gilprobe"))
        # A fresh root has none of the libraries: apt fetches what Depends
        # names, from Debian's mirror.
        install = subprocess.run(["chroot", root, "apt-get", "install", "-y", "-q",
                                  "--no-install-recommends", "/tmp/gilprobe.deb"],
                                 capture_output=True, text=True, timeout=600,
                                 env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
        out = subprocess.run(["chroot", root, "gilprobe", "--version"], capture_output=True,
                             text=True)
        assert out.returncode == 0 and out.stdout.strip() == "gilprobe " + version(), (
            out.stdout, out.stderr)
        # It runs past its start: a missing process is exit 3, one clear line.
        gone = subprocess.run(["chroot", root, "gilprobe", "dump", "-p", "4194303"],
                              capture_output=True, text=True)
        assert gone.returncode == 3 and gone.stderr.count("\n") == 1, gone.stderr
        assert os.path.isfile(os.path.join(root, "usr/share/man/man1/gilprobe.1.gz"))
        status = subprocess.run(["chroot", root, "dpkg-query", "-W", "-f=${Status}", "gilprobe"],
                                capture_output=True, text=True)
        assert status.stdout == "install ok installed", status.stdout
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_readme_is_a_short_guide_and_every_doc_link_resolves():
    readme = open(os.path.join(ROOT, "README.md")).read()
    lines = readme.split("\n")
    assert len(lines) <= 350, len(lines)
    first_screen = "\n".join(lines[:25])
    assert "make demo" in first_screen and "make test" in first_screen
    docs = [os.path.join(ROOT, "README.md")] + glob.glob(os.path.join(ROOT, "docs", "*.md"))
    broken = []
    for path in docs:
        text = open(path).read()
        assert "../shared" not in text, path  # nothing outside the repository
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            if not os.path.exists(os.path.join(os.path.dirname(path), target)):
                broken.append((os.path.relpath(path, ROOT), target))
        # Paths named in code spans exist: a file moved or renamed cannot
        # leave a stale pointer behind.
        for named in re.findall(r"`((?:src|include|bpf|tools|tests|fuzz|bench|docs)/[\w./-]+)`", text):
            if not os.path.exists(os.path.join(ROOT, named)):
                broken.append((os.path.relpath(path, ROOT), named))
    assert broken == [], broken


def _layer_check(root):
    return subprocess.run([shutil.which("python3") or "/usr/bin/python3",
                           os.path.join(ROOT, "tools", "check_layers.py"), root],
                          capture_output=True, text=True)


def test_layering_holds_and_the_check_catches_an_upward_include(tmp_path):
    """The tree passes tools/check_layers.py; a copy with one include of a
    higher layer (target -> report), one of a sibling (ebpf -> native) and
    a stray folder fails it, naming each."""
    ok = _layer_check(ROOT)
    assert ok.returncode == 0, ok.stdout
    root = str(tmp_path / "tree")
    for part in ("src", "include"):
        shutil.copytree(os.path.join(ROOT, part), os.path.join(root, part))
    proc = os.path.join(root, "src", "target", "proc.c")
    with open(proc, "a") as f:
        f.write('\n#include "report/common.h"\n')
    with open(os.path.join(root, "src", "ebpf", "loop.c"), "a") as f:
        f.write('\n#include "native/merge.h"\n')
    os.mkdir(os.path.join(root, "src", "misc"))
    bad = _layer_check(root)
    assert bad.returncode == 1
    assert 'src/target/proc.c (layer target) includes "report/common.h" of layer report, which is above it' in bad.stdout
    assert 'src/ebpf/loop.c (layer ebpf) includes "native/merge.h" of layer native, which is beside it' in bad.stdout
    assert "src/misc/: not a layer" in bad.stdout
