"""The explanation service end to end: real worker processes, real SQLite and PostgreSQL stores.

Models are trained here in seconds. The data: five i.i.d. N(0, 1) inputs; rule 1
labels lean on x1 (weights 3, 1, 0.3 on x1, x2, x3), rule 2 swaps the roles of x1 and
x2. Model A is trained on rule 1 and gives the baseline importances; A2 is A retrained
on fresh rule-1 data; B is trained on rule-2 labels of inputs from the same
distribution. All three explain the *same* window of rows, so the inputs cannot
have drifted; only B's reliance on the features has.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.explainers.explain_models import FEATURES, RULE_1, RULE_2, categorical_frame, inputs, make_batch, train_lightgbm, train_xgboost
from prometheus_client import CollectorRegistry

from explainers import global_importances, load_model
from explainers.service import ExplainService
from monitor.baseline import build_baseline
from monitor.config import ExplainSettings, ModelSettings
from monitor.metrics import PipelineMetrics
from monitor.results import WindowKey
from monitor.store import open_store

shap = pytest.importorskip("shap")
xgboost = pytest.importorskip("xgboost")

WINDOW = 1_700_000_000.0
# Stored SHAP values are the worker's float64 values through a JSON column: they
# must equal shap.TreeExplainer run directly on the same rows to float rounding.
AGREEMENT_ATOL = 1e-9


@pytest.fixture(scope="module")
def trained(model_dir: Path) -> dict:
    a = train_xgboost(model_dir / "a", RULE_1, seed=0)
    a2 = train_xgboost(model_dir / "a2", RULE_1, seed=10)
    b = train_xgboost(model_dir / "b", RULE_2, seed=20)
    lgb = train_lightgbm(model_dir / "lgb")
    reference = inputs(3000, 1)
    importances = global_importances(a, reference)
    baseline = build_baseline(reference, "a", "v1", importances=importances)
    lgb_reference = categorical_frame(2000, 5)
    lgb_baseline = build_baseline(lgb_reference, "lgb", "v1", importances=global_importances(lgb, lgb_reference))
    return {
        "files": {"a": a, "a2": a2, "b": b, "lgb": lgb},
        # A2 and B are monitored against A's baseline: a retrained model deployed
        # under the same monitored version.
        "baselines": {"a": baseline, "a2": baseline, "b": baseline, "lgb": lgb_baseline},
    }


def _model_settings(files: dict[str, Path], **extra: ModelSettings) -> dict[str, ModelSettings]:
    models = {name: ModelSettings(name=name, model_file=path) for name, path in files.items()}
    models.update(extra)
    return models


def _service_of_a(trained: dict, store, registry: CollectorRegistry, **options) -> ExplainService:
    """One worker explaining every row of model A, no budget."""
    settings = ExplainSettings(enabled=True, workers=1, base_rate=1.0, max_per_second=1e9)
    return ExplainService(settings, _model_settings({"a": trained["files"]["a"]}), trained["baselines"],
                          store, PipelineMetrics(registry), **options)


@pytest.fixture(scope="module")
def pg_module_url(postgres_url: str) -> Iterator[str]:
    import sqlalchemy

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'create schema "{schema}"'))
    try:
        yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'drop schema "{schema}" cascade'))
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, trained: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'driftd.db'}"
    else:
        url = request.getfixturevalue("pg_module_url")
    store = open_store(url)
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    settings = ExplainSettings(enabled=True, workers=1, queue_size=5000, base_rate=1.0,
                               near_threshold_band=0.0, max_per_second=1e6)
    service = ExplainService(settings, _model_settings(trained["files"]), trained["baselines"], store, metrics)
    assert service.wait_ready(180), "workers did not start"
    yield {"service": service, "store": store, "registry": registry, **trained}
    service.close()
    store.close()


def test_stored_shap_values_equal_tree_explainer_run_directly(env: dict) -> None:
    service, store, registry = env["service"], env["store"], env["registry"]
    frame = inputs(300, 42)
    batch = make_batch(frame, "a", prefix="agree-")
    assert service.offer(batch, np.full(len(batch), WINDOW)) == 300
    assert service.flush(60)
    stored = store.explanations_for_window("a", "v1", WINDOW, limit=1000)
    by_id = {r.prediction_id: r for r in stored if r.prediction_id.startswith("agree-")}
    # Every sampled prediction's explanation is in the store.
    assert set(by_id) == set(batch.prediction_ids)
    rows = [by_id[p] for p in batch.prediction_ids]
    stored_values = np.array([[r.shap_values[f] for f in FEATURES] for r in rows])
    booster = xgboost.Booster(model_file=str(env["files"]["a"]))
    direct = shap.TreeExplainer(booster)
    X = frame.to_numpy()
    np.testing.assert_allclose(stored_values, direct.shap_values(X), rtol=0, atol=AGREEMENT_ATOL)
    # Additivity, stored: base value + sum of SHAP = the model's log-odds.
    margin = booster.predict(xgboost.DMatrix(X, feature_names=FEATURES), output_margin=True)
    base = np.array([r.base_value for r in rows])
    np.testing.assert_allclose(base + stored_values.sum(1), margin, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(base, direct.expected_value, atol=1e-6)
    first = rows[0]
    assert first.explainer == "tree/log_odds" and first.reason == "base_rate" and first.background_hash == ""
    assert first.features == {f: pytest.approx(v) for f, v in frame.iloc[0].items()}
    assert registry.get_sample_value("driftd_explanations_total", {"model": "a"}) >= 300
    assert registry.get_sample_value("driftd_explain_latency_seconds_count") >= 300
    assert registry.get_sample_value("driftd_explain_queue_depth") == 0


def test_lightgbm_with_string_categories_through_the_workers(env: dict) -> None:
    service, store = env["service"], env["store"]
    frame = categorical_frame(100, 77)
    logged = frame.assign(colour=frame["colour"].astype(str))
    batch = make_batch(logged, "lgb", prefix="cat-", numeric=["x1", "x2"], categorical=["colour"])
    assert service.offer(batch, np.full(100, WINDOW)) == 100
    assert service.flush(60)
    stored = {r.prediction_id: r for r in store.explanations_for_window("lgb", "v1", WINDOW, limit=500)}
    loaded = load_model(env["files"]["lgb"])
    direct = shap.TreeExplainer(loaded.model).shap_values(frame)
    values = np.array([[stored[p].shap_values[f] for f in ["x1", "x2", "colour"]] for p in batch.prediction_ids])
    np.testing.assert_allclose(values, direct, atol=AGREEMENT_ATOL)
    assert stored["cat-0"].features["colour"] == logged["colour"].iloc[0]


def test_attribution_drift_flags_swapped_roles_with_unchanged_inputs(env: dict) -> None:
    service, store = env["service"], env["store"]
    window = WINDOW + 300
    frame = inputs(400, 2024)  # the same rows for every model: no input drift at all
    for model in ("a", "a2", "b"):
        batch = make_batch(frame, model, prefix=f"swap-{model}-")
        assert service.offer(batch, np.full(len(batch), window)) == 400
    assert service.flush(60)
    summaries = {m: service.attribution(WindowKey(m, "v1", ""), window) for m in ("a", "a2", "b")}
    assert all(s is not None and s.n_explanations == 400 for s in summaries.values())
    # The model the baseline came from, and the same rule retrained: quiet.
    assert summaries["a"].ndcg > 0.99 and not summaries["a"].drifted
    assert summaries["a2"].ndcg > 0.95 and not summaries["a2"].drifted
    # The swapped rule: x2 now leads, x1 follows.
    swapped = summaries["b"]
    assert swapped.drifted and swapped.ndcg < swapped.threshold == 0.9
    assert swapped.relative_change["x2"] > 1.0 and swapped.relative_change["x1"] < -0.5
    assert abs(summaries["a2"].relative_change["x1"]) < 0.25
    # The store's query API agrees with the service's running sums.
    top = store.top_attributions("b", "v1", window, k=2)
    assert [name for name, _ in top] == ["x2", "x1"]
    assert top[0][1] == pytest.approx(swapped.mean_abs_shap["x2"], rel=1e-9)
    changed = {key.model for key, start, _ in service.changed_attributions() if start == window}
    assert {"a", "a2", "b"} <= changed


@pytest.fixture(scope="module")
def policy_env(trained: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    directory = tmp_path_factory.mktemp("policy")
    store = open_store(f"sqlite:///{directory / 'driftd.db'}")
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    now = [1000.0]
    settings = ExplainSettings(enabled=True, workers=1, queue_size=1000, base_rate=0.0,
                               drifted_window_rate=0.0, near_threshold_band=0.05, max_per_second=20)
    files = {"a": trained["files"]["a"]}
    broken = ModelSettings(name="broken", model_file=trained["files"]["b"], model_sha256="0" * 64)
    missing = ModelSettings(name="missing", model_file=directory / "nope.json")
    service = ExplainService(settings, _model_settings(files, broken=broken, missing=missing),
                             trained["baselines"], store, metrics, clock=lambda: now[0])
    assert service.wait_ready(180)
    yield {"service": service, "store": store, "registry": registry, "now": now}
    service.close()
    store.close()


def _dropped(registry: CollectorRegistry, model: str, reason: str) -> float:
    return registry.get_sample_value("driftd_explain_dropped_total", {"model": model, "reason": reason}) or 0.0


def test_bad_model_files_disable_only_that_model(policy_env: dict) -> None:
    service, registry = policy_env["service"], policy_env["registry"]
    assert service.models == ["a"]
    assert "does not match the pinned model_sha256" in service.load_errors["broken"]
    assert "No such file" in service.load_errors["missing"]
    frame = inputs(10, 3)
    batch = make_batch(frame, "broken", scores=np.full(10, 0.5))
    assert service.offer(batch, np.full(10, WINDOW)) == 0
    assert _dropped(registry, "broken", "model_unavailable") == 10


def test_near_threshold_budget_and_later_found_wrong(policy_env: dict) -> None:
    service, store, registry, now = (policy_env[k] for k in ("service", "store", "registry", "now"))
    frame = inputs(100, 8)
    scores = np.linspace(0.0, 1.0, 100)
    near = np.flatnonzero(np.abs(scores - 0.5) <= 0.05)
    batch = make_batch(frame, "a", prefix="near-", scores=scores)
    assert service.offer(batch, np.full(100, WINDOW)) == len(near) == 10
    # Budget: 20/s and the bucket holds one second's worth; 10 are left.
    again = make_batch(frame, "a", prefix="more-", scores=np.full(100, 0.5))
    assert service.offer(again, np.full(100, WINDOW)) == 10
    assert _dropped(registry, "a", "budget") == 90
    now[0] += 1.0  # the budget refills
    wrong = ["near-3", "near-97", "near-50", "never-seen"]
    # near-50 is explained already; near-3 and near-97 were not picked before.
    assert service.offer_wrong(wrong, model="a") == 2
    assert _dropped(registry, "a", "not_cached") == 1
    assert service.flush(60)
    stored = {r.prediction_id: r for r in store.explanations_for_window("a", "v1", WINDOW, limit=1000)}
    assert {f"near-{i}" for i in near} <= set(stored)
    assert stored["near-50"].reason == "near_threshold"
    assert stored["near-3"].reason == stored["near-97"].reason == "wrong"
    assert "near-4" not in stored


def test_offer_never_blocks_when_the_pool_is_saturated(trained: dict, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'driftd.db'}")
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    settings = ExplainSettings(enabled=True, workers=1, queue_size=200, base_rate=1.0, max_per_second=1e9)
    service = ExplainService(settings, _model_settings({"a": trained["files"]["a"]}), trained["baselines"],
                             store, metrics, task_rows=50)
    try:
        assert service.wait_ready(180)
        frame = inputs(2000, 5)
        accepted, durations, depths = 0, [], []
        for i in range(60):
            batch = make_batch(frame, "a", prefix=f"s{i}-")
            started = time.perf_counter()
            accepted += service.offer(batch, np.full(2000, WINDOW))
            durations.append(time.perf_counter() - started)
            depths.append(registry.get_sample_value("driftd_explain_queue_depth"))
        offered = 60 * 2000
        dropped = _dropped(registry, "a", "queue_full")
        assert dropped > 0 and accepted + dropped == offered
        assert max(depths) <= 200
        # Loose bound (2 shared cores): each call is a few milliseconds of numpy.
        assert max(durations) < 0.5, f"offer took {max(durations):.3f} s"
        assert service.flush(120)
        assert registry.get_sample_value("driftd_explanations_total", {"model": "a"}) == accepted
        pids = service.worker_pids
    finally:
        service.close()
        store.close()
    _assert_gone(pids)


def _assert_gone(pids: list[int]) -> None:
    assert pids, "no worker processes were seen"
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if _running(p)]
        time.sleep(0.05)
    assert not alive, f"worker processes left behind: {alive}"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_close_stops_busy_workers_and_accounts_for_every_row(trained: dict, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'driftd.db'}")
    registry = CollectorRegistry()
    settings = ExplainSettings(enabled=True, workers=2, queue_size=300_000, base_rate=1.0, max_per_second=1e9)
    service = ExplainService(settings, _model_settings({"a": trained["files"]["a"]}), trained["baselines"],
                             store, PipelineMetrics(registry), task_rows=2000)
    assert service.wait_ready(180)
    pids = service.worker_pids
    assert len(pids) == 2 and os.getpid() not in pids
    n = 200_000
    batch = make_batch(inputs(n, 6), "a", prefix="c-")
    assert service.offer(batch, np.full(n, WINDOW)) == n
    service.close(timeout=0.5)  # far too short to explain 200k rows
    stored = registry.get_sample_value("driftd_explanations_total", {"model": "a"}) or 0.0
    shutdown = _dropped(registry, "a", "shutdown")
    assert shutdown > 0 and stored + shutdown == n
    assert registry.get_sample_value("driftd_explain_queue_depth") == 0
    _assert_gone(pids)
    assert service.offer(batch, np.full(n, WINDOW)) == 0  # closed
    store.close()


def test_a_killed_worker_is_replaced(trained: dict, tmp_path: Path) -> None:
    import signal

    store = open_store(f"sqlite:///{tmp_path / 'driftd.db'}")
    registry = CollectorRegistry()
    with _service_of_a(trained, store, registry) as service:
        assert service.wait_ready(180)
        (victim,) = service.worker_pids
        os.kill(victim, signal.SIGKILL)  # e.g. the OOM killer
        _assert_gone([victim])
        time.sleep(0.5)  # let the pool notice
        service.offer(make_batch(inputs(20, 1), "a", prefix="lost-"), np.full(20, WINDOW))
        assert service.flush(60)
        lost = _dropped(registry, "a", "worker_error")
        assert lost in (0, 20)  # the task that found the pool broken is counted, not retried
        assert service.offer(make_batch(inputs(30, 2), "a", prefix="after-"), np.full(30, WINDOW)) == 30
        assert service.flush(60)
        stored = {r.prediction_id for r in store.explanations_for_window("a", "v1", WINDOW, limit=100)}
        assert {f"after-{i}" for i in range(30)} <= stored
        assert len(stored) == 30 + (20 - lost)
        assert service.worker_pids and victim not in service.worker_pids
    store.close()


def test_store_outage_is_counted_not_fatal(trained: dict) -> None:
    # A real store that cannot be reached: nothing listens on port 9.
    store = open_store("postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=1", create=False)
    registry = CollectorRegistry()
    with _service_of_a(trained, store, registry) as service:
        assert service.wait_ready(180)
        assert service.offer(make_batch(inputs(30, 1), "a"), np.full(30, WINDOW)) == 30
        assert service.flush(60)
        assert _dropped(registry, "a", "store_error") == 30
        assert registry.get_sample_value("driftd_store_errors_total", {"operation": "add_explanations"}) >= 1
        # Attribution still works from the computed values.
        assert service.attribution(WindowKey("a", "v1", ""), WINDOW).n_explanations == 30


def test_in_memory_store_gets_the_rows_from_the_collector(trained: dict) -> None:
    # Worker processes cannot open another process's in-memory SQLite database: they
    # send the rows back and the daemon's collector thread writes them.
    store = open_store("sqlite://")
    registry = CollectorRegistry()
    with _service_of_a(trained, store, registry) as service:
        assert service.wait_ready(180)
        frame = inputs(40, 17)
        batch = make_batch(frame, "a", prefix="mem-")
        assert service.offer(batch, np.full(40, WINDOW)) == 40
        assert service.flush(60)
        stored = {r.prediction_id: r for r in store.explanations_for_window("a", "v1", WINDOW, limit=100)}
        assert set(stored) == set(batch.prediction_ids)
        values = np.array([[stored[p].shap_values[f] for f in FEATURES] for p in batch.prediction_ids])
        direct = shap.TreeExplainer(xgboost.Booster(model_file=str(trained["files"]["a"])))
        np.testing.assert_allclose(values, direct.shap_values(frame.to_numpy()), rtol=0, atol=AGREEMENT_ATOL)
        assert registry.get_sample_value("driftd_explanations_total", {"model": "a"}) == 40
        assert registry.get_sample_value("driftd_explain_latency_seconds_count") == 40
        assert service.attribution(WindowKey("a", "v1", ""), WINDOW).n_explanations == 40
    store.close()


def test_small_offers_linger_into_one_task_and_go_without_a_flush(trained: dict, tmp_path: Path) -> None:
    # A budget-limited stream admits a row or two per batch; each task costs the
    # daemon pickling and bookkeeping, so rows wait up to task_linger for company.
    store = open_store(f"sqlite:///{tmp_path / 'driftd.db'}")
    registry = CollectorRegistry()
    with _service_of_a(trained, store, registry, task_linger=1.0) as service:
        assert service.wait_ready(180)
        frame = inputs(6, 8)
        for i in range(6):
            assert service.offer(make_batch(frame.iloc[[i]], "a", prefix=f"linger{i}-"), np.full(1, WINDOW)) == 1
        # No flush: the rows must leave once their linger is over.
        deadline = time.monotonic() + 30
        while (registry.get_sample_value("driftd_explanations_total", {"model": "a"}) or 0) < 6:
            assert time.monotonic() < deadline, "lingering rows were never dispatched"
            time.sleep(0.05)
        stored = store.explanations_for_window("a", "v1", WINDOW, limit=100)
        mine = [r for r in stored if r.prediction_id.startswith("linger")]
        assert len(mine) == 6
        # One task: its rows share the task's SHAP time per row.
        assert len({r.duration_ms for r in mine}) == 1
    store.close()


def _cpu_ticks_by_thread(pid: int) -> dict[int, int]:
    """User + system CPU time (clock ticks) of each thread of ``pid``."""
    ticks = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks[int(tid)] = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks


def test_workers_are_background_processes_of_one_core_each(trained: dict, tmp_path: Path) -> None:
    # Explanations take only CPU that ingest does not want: nice 19 and SCHED_IDLE,
    # and one thread doing the work per worker (XGBoost's SHAP would otherwise run
    # an OpenMP thread per core).
    store = open_store(f"sqlite:///{tmp_path / 'driftd.db'}")
    registry = CollectorRegistry()
    with _service_of_a(trained, store, registry, task_rows=1000) as service:
        assert service.wait_ready(180)
        (pid,) = service.worker_pids
        assert os.getpriority(os.PRIO_PROCESS, pid) == 19
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        # A first task, then quiet: helper threads (BLAS, OpenMP) that a busy machine
        # let start late at idle priority have finished starting.
        assert service.offer(make_batch(inputs(1000, 8), "a", prefix="warm-"), np.full(1000, WINDOW)) == 1000
        assert service.flush(120)
        before, deadline = _cpu_ticks_by_thread(pid), time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.5)
            settled, before = before, _cpu_ticks_by_thread(pid)
            if settled == before:
                break
        for i in range(4):  # 4 tasks of 1,000 rows (the default queue holds 1,000)
            assert service.offer(make_batch(inputs(1000, 9), "a", prefix=f"bg{i}-"), np.full(1000, WINDOW)) == 1000
            assert service.flush(120)
        assert registry.get_sample_value("driftd_explanations_total", {"model": "a"}) == 5000
        after = _cpu_ticks_by_thread(pid)
    store.close()
    gained = sorted((ticks - before.get(tid, 0) for tid, ticks in after.items()), reverse=True)
    assert gained[0] > 10, gained  # the task's work is seen (> 0.1 s)
    assert all(ticks <= 2 for ticks in gained[1:]), f"CPU ticks per worker thread: {gained}"
