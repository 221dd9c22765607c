"""The retrain_requests table: the per-model cooldown, claims of unpublished rows, ack/reject."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from monitor.store import open_store
from monitor.store.retrain import RetrainRequestClosed, RetrainRequestNotFound

T0 = datetime(2026, 12, 4, 12, tzinfo=UTC)
DAY = 86_400


def insert(store, now, model="credit", version="v1", reason="drift_persisted"):
    return store.insert_retrain_request(
        model=model, version=version, segment="", reason=reason, now=now, cooldown_seconds=DAY,
        build_payload=lambda request_id, created_at: {"request_id": request_id, "created_at": created_at.isoformat()},
    )


def test_one_request_per_model_within_the_cooldown(store):
    first, held = insert(store, T0)
    assert first is not None and held is None
    assert first.payload == {"request_id": first.request_id, "created_at": T0.isoformat()}
    # Another version or reason of the same model is held by the same cooldown.
    assert insert(store, T0 + timedelta(hours=23), version="v2", reason="performance_dropped") == (None, T0)
    # Another model is not.
    other, _ = insert(store, T0 + timedelta(hours=1), model="fraud")
    assert other is not None
    # After the cooldown the model may ask again.
    again, _ = insert(store, T0 + timedelta(seconds=DAY + 1))
    assert again is not None and again.request_id != first.request_id
    assert [r.model for r in store.retrain_requests()] == ["credit", "fraud", "credit"]
    assert [r.id for r in store.retrain_requests(model="credit")] == [again.id, first.id]


def test_concurrent_daemons_insert_one_request(store_url):
    stores = [open_store(store_url) for _ in range(6)]
    results: list = []
    barrier = threading.Barrier(len(stores))

    def race(store):
        barrier.wait()
        results.append(insert(store, T0)[0])

    threads = [threading.Thread(target=race, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert len(results) == len(stores)
        assert sum(r is not None for r in results) == 1
        assert len(stores[0].retrain_requests()) == 1
    finally:
        for store in stores:
            store.close()


def test_unpublished_rows_are_claimed_once_after_the_lease(store):
    record, _ = insert(store, T0)
    assert store.claim_unpublished_retrain(T0 + timedelta(seconds=30), lease_seconds=60) == []
    claimed = store.claim_unpublished_retrain(T0 + timedelta(seconds=61), lease_seconds=60)
    assert [r.request_id for r in claimed] == [record.request_id]
    # Claimed again right after: the new claim holds.
    assert store.claim_unpublished_retrain(T0 + timedelta(seconds=62), lease_seconds=60) == []
    store.mark_retrain_published(record.request_id, T0 + timedelta(seconds=63))
    assert store.claim_unpublished_retrain(T0 + timedelta(days=2), lease_seconds=60) == []
    assert store.retrain_request(record.id).published_at == T0 + timedelta(seconds=63)


def test_ack_and_reject(store):
    first, _ = insert(store, T0)
    second, _ = insert(store, T0, model="fraud")
    acked = store.act_on_retrain_request(first.id, "acknowledged", "job 17", T0 + timedelta(hours=1))
    assert (acked.status, acked.note, acked.acted_at) == ("acknowledged", "job 17", T0 + timedelta(hours=1))
    rejected = store.act_on_retrain_request(second.request_id, "rejected", "seasonal", T0)
    assert rejected.status == "rejected"
    with pytest.raises(RetrainRequestClosed, match="already acknowledged"):
        store.act_on_retrain_request(first.id, "rejected", "", T0)
    with pytest.raises(RetrainRequestNotFound, match="no retrain request 999"):
        store.act_on_retrain_request(999, "acknowledged", "", T0)
    assert store.retrain_request("no-such-uuid") is None
    assert [r.model for r in store.retrain_requests(status="rejected")] == ["fraud"]
