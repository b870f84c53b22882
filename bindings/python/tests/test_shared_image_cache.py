"""The model-level image cache through Python: every session of a model shares the images any of
them encoded (luhd_model_params.image_cache_bytes, default 256 MiB), so a second session asking
about the same picture skips the vision stage and answers exactly as the first; a session with
image_cache_size=0 neither reads nor fills it."""
import threading

import llavauhd

NOSLICE = {"preresize_long_side": 0}
QUESTION = "What animal is this?"


def test_second_session_takes_the_image_from_the_model(assets, small_image):
    with llavauhd.Model(assets / "models" / "small-noslice") as model:
        with llavauhd.Session(model, **NOSLICE) as first:
            answer = first.chat(QUESTION, images=[small_image], sampling=llavauhd.Sampling(max_new_tokens=6))
            assert first.last_stats.n_images_encoded == 1 and first.last_stats.n_images_cached == 0
        with llavauhd.Session(model, **NOSLICE) as second:
            assert second.chat(QUESTION, images=[small_image], sampling=llavauhd.Sampling(max_new_tokens=6)) == answer
            st = second.last_stats
            assert st.n_images_encoded == 0 and st.n_images_cached == 1 and st.image_seconds == 0
        with llavauhd.Session(model, image_cache_size=0, **NOSLICE) as uncached:
            assert uncached.chat(QUESTION, images=[small_image], sampling=llavauhd.Sampling(max_new_tokens=6)) == answer
            assert uncached.last_stats.n_images_encoded == 1 and uncached.last_stats.n_images_cached == 0


def test_sessions_on_threads_share_one_encoding(assets, small_image):
    with llavauhd.Model(assets / "models" / "small-noslice", n_threads=1) as model:
        with llavauhd.Session(model, **NOSLICE) as s:
            reference = s.chat(QUESTION, images=[small_image], sampling=llavauhd.Sampling(max_new_tokens=6))
        results: list = []
        lock = threading.Lock()

        def ask() -> None:
            with llavauhd.Session(model, **NOSLICE) as s:
                text = s.chat(QUESTION, images=[small_image], sampling=llavauhd.Sampling(max_new_tokens=6))
                with lock:
                    results.append((text, s.last_stats.n_images_cached))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [(reference, 1)] * 4
