"""The deflate engines and DUPCORE_COMPRESS profiles: every engine and level writes gzip volumes
that ``gzip -t`` and Python's gzip read back exactly, OpenPGP packets gpg decrypts, and backups
stock duplicity restores; sizes stay within the bounds docs/benchmarks.md states against stock's
zlib 6 (Python's ``zlib``) on compressible data.
"""

import gzip
import random
import shutil
import subprocess
import sys
import zlib

import pytest
from dupcore import _core, deflate
from dupcore.harness import demo
from helpers import assert_same_tree, clean_env, run_duplicity, snapshot

#: Size of each profile's output against stock's zlib 6, on the sample below (upper bounds).
SIZE_BOUND = {"default": 1.01, "small": 1.00, "fast": 1.10}


def _sample():
    """About 3 MiB of database-like pages and text, plus 512 KiB of random bytes."""
    rng = random.Random(7)
    pool = demo._pool(rng)
    text = b"".join(rng.choice(pool) for _ in range(20_000))
    return demo._db(rng, pool, 2 << 20) + text + rng.randbytes(512 << 10)


SAMPLE = _sample()


def _stock_size(data):
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return len(c.compress(data) + c.flush())


def _settings():
    """(engine, level) of every engine and level this build has."""
    out = []
    for engine in _core.DEFLATE_ENGINES:
        levels = range(1, 4) if engine == "isal" else range(1, 10)
        out += [(engine, lv) for lv in levels]
    return out


def test_build_has_isal_where_its_tools_are():
    """make build turns ISA-L on where nasm and autotools are installed (as .ci/run does)."""
    tools = all(shutil.which(t) for t in ("autoreconf", "libtoolize", "nasm"))
    assert ("isal" in _core.DEFLATE_ENGINES) == tools, _core.DEFLATE_ENGINES


@pytest.mark.parametrize("engine,level", _settings())
def test_every_engine_and_level_writes_valid_gzip(tmp_path, engine, level):
    p = tmp_path / "v.gz"
    w = _core.VolumeWriter(str(p), level, 1_700_000_000, engine=engine)
    for i in range(0, len(SAMPLE), 100_003):
        w.write(SAMPLE[i:i + 100_003])
    summary = w.close()
    assert summary.size == p.stat().st_size
    subprocess.run(["gzip", "-t", str(p)], check=True)
    assert gzip.decompress(p.read_bytes()) == SAMPLE
    assert p.stat().st_size < 0.75 * len(SAMPLE)


@pytest.mark.parametrize("profile", ["default", "fast", "small"])
def test_profile_sizes_against_stock(tmp_path, monkeypatch, profile):
    monkeypatch.setenv("DUPCORE_COMPRESS", profile)
    how = deflate.choice()
    assert how.problem is None and how.profile == profile
    p = tmp_path / "v.gz"
    w = _core.VolumeWriter(str(p), how.level, 0, engine=how.engine)
    w.write(SAMPLE)
    w.close()
    assert gzip.decompress(p.read_bytes()) == SAMPLE
    ratio = p.stat().st_size / _stock_size(SAMPLE)
    assert ratio <= SIZE_BOUND[profile], (profile, how.engine, how.level, ratio)


def test_store_detection_keeps_ratio_on_compressible_data(tmp_path):
    """Compressible data is never stored: default stays within 1 % of stock on it alone."""
    data = SAMPLE[:-(512 << 10)]
    p = tmp_path / "v.gz"
    w = _core.VolumeWriter(str(p), 6, 0)
    w.write(data)
    w.close()
    assert p.stat().st_size <= 1.01 * _stock_size(data)


def test_profiles_and_unknown_name(monkeypatch):
    assert _core.deflate_profile("default") == ("zlib-rs", _core.DEFLATE_LEVEL)
    assert _core.deflate_profile("small") == ("zlib-rs", 7)
    fast = _core.deflate_profile("fast")
    assert fast == (("isal", 3) if "isal" in _core.DEFLATE_ENGINES else ("zlib-rs", 1))
    with pytest.raises(ValueError, match="DUPCORE_COMPRESS=quick"):
        _core.deflate_profile("quick")
    with pytest.raises(ValueError, match="level 4"):
        _core.VolumeWriter("/nonexistent/x", 4, engine="isal")
    monkeypatch.setenv("DUPCORE_COMPRESS", "Quick")
    how = deflate.choice()
    assert (how.engine, how.level) == ("zlib-rs", 6) and "quick" in how.problem


def _status(env):
    return subprocess.run([sys.executable, "-m", "dupcore", "status"], check=False, env=env,
                          capture_output=True, text=True)


def test_status_shows_engine_and_bad_value():
    env = clean_env(DUPCORE_COMPRESS="fast")
    out = _status(env).stdout
    engine, level = _core.deflate_profile("fast")
    assert f"deflate    {engine} level {level} (DUPCORE_COMPRESS=fast" in out, out
    res = _status(clean_env(DUPCORE_COMPRESS="tiny"))
    assert res.returncode == 1 and "PROBLEM: DUPCORE_COMPRESS=tiny is not one of" in res.stdout


@pytest.mark.e2e
@pytest.mark.parametrize("profile", ["fast", "small"])
@pytest.mark.parametrize("encryption", ["plain", "symmetric"])
def test_stock_restores_every_profile(tmp_path, gnupghome, profile, encryption):
    """Backups written with each profile restore exactly with stock duplicity."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "db").write_bytes(SAMPLE)
    (tree / "text").write_bytes(SAMPLE[: 1 << 20])
    enc = ["--no-encryption"] if encryption == "plain" else []
    extra = {} if encryption == "plain" else {"PASSPHRASE": "pw"}
    target = f"file://{tmp_path / 'target'}"
    run_duplicity(["full", *enc, "--archive-dir", tmp_path / "a1", "--name", "x", tree, target],
                  clean_env(gnupghome, mode="dupcore", DUPCORE_COMPRESS=profile, **extra))
    if encryption == "plain" and _core.deflate_profile(profile)[0] == "isal":
        vol = next((tmp_path / "target").glob("duplicity-full.*.vol1.difftar.gz"))
        assert vol.read_bytes()[8] == 4  # XFL "fastest": ISA-L wrote it, not zlib 6
    out = tmp_path / "out"
    run_duplicity(["restore", *enc, "--archive-dir", tmp_path / "a2", "--name", "x", target, out],
                  clean_env(gnupghome, mode="stock", **extra))
    assert_same_tree(snapshot(tree), snapshot(out), f"{profile} {encryption}")
