"""A restart does not take a stale end offset for a recreated topic.

Seen on the embedded broker under load: after a consumer rejoined, the broker reported
end offsets a few records short of what it had already served, and driftd read every
partition again from the start ("topic recreated"), counting everything twice or as
late. Now driftd first checks that the last record it read is still there. The end
offsets are under-reported here by patching ``KafkaConsumer.end_offsets`` on a real
broker (the misreport itself cannot be provoked on demand); the recreated case (an
empty broker after a restart) is covered by ``test_reliability_outages.py``.
"""

from __future__ import annotations

import logging

import orjson
import pytest
from kafka import KafkaConsumer

from monitor.daemon import Daemon
from tests.core import event_time_stack as stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_stale_end_offset_is_not_a_recreated_topic(tmp_path, kafka_bootstrap, topic_prefix, monkeypatch, caplog) -> None:
    settings = stack.settings_for(tmp_path, kafka_bootstrap, topic_prefix)
    topic = settings.kafka.predictions_topic
    stack.create_topic(kafka_bootstrap, topic, 2)
    first, second = stack.EVENTS[:3000], stack.EVENTS[3000:4000]
    stack.produce(kafka_bootstrap, topic, stack.keyed_by_prediction_id, first)

    daemon = Daemon(settings).start()
    try:
        stack.wait_until(lambda: daemon.metrics.events.labels(model="credit", version="v1")._value.get() == 3000
                         and sum(orjson.loads(orjson.dumps(daemon.consumer._checkpoint_offsets)).values()) == 3000,
                         60, "the first events consumed and checkpointed")
    finally:
        daemon.stop()

    real = KafkaConsumer.end_offsets
    monkeypatch.setattr(KafkaConsumer, "end_offsets",
                        lambda self, partitions: {tp: max(0, end - 3) for tp, end in real(self, partitions).items()})
    caplog.set_level(logging.INFO, logger="monitor.consumer")
    again = Daemon(settings).start()
    try:  # the new events only once the partitions are sought (their end is then the checkpoint's)
        stack.wait_until(lambda: "still there" in caplog.text or again.metrics.offset_resets._value.get() > 0,
                         60, "the restart to seek its partitions")
        stack.produce(kafka_bootstrap, topic, stack.keyed_by_prediction_id, second)
        stack.wait_until(lambda: again.metrics.events.labels(model="credit", version="v1")._value.get() >= 1000,
                         60, "the new events")
        assert again.metrics.events.labels(model="credit", version="v1")._value.get() == 1000  # nothing read twice
        assert again.metrics.offset_resets._value.get() == 0
        assert again.metrics.late_events.labels(model="credit")._value.get() == 0
        assert "still there: continuing from the checkpoint" in caplog.text
    finally:
        again.stop()
