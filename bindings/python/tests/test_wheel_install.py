"""Run by scripts/test-wheel.sh against the installed wheel (also passes from a checkout): the
package answers a question about a photo with a tiny model, and the OpenBLAS in the process is
the copy beside libllavauhd.so."""
from pathlib import Path

from conftest import UPSTREAM

import llavauhd


def test_answers_with_the_bundled_openblas(assets):
    model_dir = assets / "models" / "small-noslice"
    with llavauhd.Model(model_dir) as model, llavauhd.Session(model, preresize_long_side=0) as s:
        answer = s.chat("What animal is this?", images=[llavauhd.Image.open(UPSTREAM / "small-noslice" / "input.png")],
                        sampling=llavauhd.Sampling(max_new_tokens=4))
        assert answer and s.last_stats.n_generated >= 1
    package = Path(llavauhd.__file__).parent
    maps = Path("/proc/self/maps").read_text().splitlines()
    # libopenblas*: ours (numpy's own copy is libscipy_openblas*, and stays numpy's).
    blas = {line.split()[-1] for line in maps if Path(line.split()[-1]).name.startswith("libopenblas")}
    if (package / "libopenblas.so.0").is_file():  # the wheel
        assert blas == {str((package / "libopenblas.so.0").resolve())}, blas
    else:  # a checkout: the system's
        assert blas and all(not p.startswith(str(package)) for p in blas), blas
