"""Soak: a real ``driftd run`` kept saturated for a long time; does its memory stay flat?

    python bench/soak_daemon.py [--minutes 16] [--warmup 180] [--rate 8000] [--backlog 600000] [--poll-records 200]

An embedded broker, a backlog of ``--backlog`` events loaded first, then a producer
adding ``--rate`` events/s, so the daemon always has something to read (its lag is
printed). Event time advances 1,000 events per second of event time: one-minute
windows close all the time. The daemon's RSS (``/proc/<pid>/statm``) is sampled every
30 s; the figure is the growth from the end of the warm-up to the end (target < 10 %).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka import KafkaProducer  # noqa: E402

from monitor.baseline import build_baseline  # noqa: E402
from monitor.broker import EmbeddedBroker  # noqa: E402
from monitor.simulate import Scenario, encode, prediction_events, training_frame  # noqa: E402

SCENARIO = Scenario(model="soak", version="v1", drift_features=(), seed=5)
EVENT_RATE = 1000.0  # events per second of event time
PLACEHOLDER = b"1234.5"


def templates(n: int = 5000) -> list[bytes]:
    events, _ = prediction_events(SCENARIO, 0.0, n, 1.0, seed=6)
    for event in events:
        event["timestamp"] = 1234.5
    return list(encode(events))


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def lag(port: int) -> float:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return float("nan")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("driftd_consumer_lag{"))


class Producer(threading.Thread):
    def __init__(self, bootstrap: str, topic: str, rate: float, start: float) -> None:
        super().__init__(daemon=True)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=1 << 18, compression_type="lz4")
        self.topic, self.rate, self.t0 = topic, rate, start
        self.templates = templates()
        self.sent = 0
        self.stop = threading.Event()

    def send(self, n: int) -> None:
        for _ in range(n):
            t = self.t0 + self.sent / EVENT_RATE
            value = self.templates[self.sent % len(self.templates)].replace(PLACEHOLDER, repr(t).encode(), 1)
            self.producer.send(self.topic, value, key=b"soak")
            self.sent += 1

    def run(self) -> None:
        began = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - began) * self.rate) - self.sent_live
            if due > 0:
                self.send(due)
                self.sent_live += due
            time.sleep(0.05)
        self.producer.flush()
        self.producer.close()

    sent_live = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=16)
    parser.add_argument("--warmup", type=float, default=180)
    parser.add_argument("--rate", type=float, default=8000)
    parser.add_argument("--backlog", type=int, default=600_000)
    parser.add_argument("--poll-records", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="driftd-soak-"))
    baseline = build_baseline(training_frame(SCENARIO, n=20_000), "soak", "v1", target="target", prediction="prediction", score="score")
    baseline.save(work / "baselines" / "soak" / "v1.json")
    with EmbeddedBroker(log_path=work / "broker.log") as broker:
        port = 19_000 + os.getpid() % 1000
        config = {
            "kafka": {"bootstrap_servers": broker.bootstrap_servers, "predictions_topic": "soak.p", "labels_topic": "soak.l",
                      "group_id": "soak", "max_poll_interval_ms": 60_000,
                      # Small polls keep the daemon slower than the producer: saturated throughout.
                      "max_poll_records": args.poll_records},
            "models": [{"name": "soak"}], "baseline_dir": str(work / "baselines"),
            "store": {"url": f"sqlite:///{work / 'soak.db'}"}, "http": {"port": port},
            "windows": {"size_seconds": 60, "allowed_lateness_seconds": 10, "min_events": 100},
            "labels": {"enabled": False}, "checkpoint": {"interval_seconds": 10},
        }
        (work / "driftd.yaml").write_text(yaml.safe_dump(config))
        producer = Producer(broker.bootstrap_servers, "soak.p", args.rate, 1_767_225_600.0)
        producer.send(args.backlog)  # the daemon starts behind
        producer.producer.flush()
        daemon = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config", str(work / "driftd.yaml"),
                                   "--log-level", "warning"], stdout=open(work / "driftd.log", "wb"), stderr=subprocess.STDOUT)
        producer.start()
        began = time.monotonic()
        samples: list[tuple[float, float, float]] = []
        try:
            while time.monotonic() - began < args.minutes * 60:
                time.sleep(30)
                elapsed = time.monotonic() - began
                samples.append((elapsed, rss_mib(daemon.pid), lag(port)))
                print(f"{elapsed:6.0f} s  RSS {samples[-1][1]:7.1f} MiB  lag {samples[-1][2]:10,.0f}  sent {producer.sent:,}", flush=True)
        finally:
            producer.stop.set()
            daemon.terminate()
            daemon.wait(timeout=60)
    after_warmup = [s for s in samples if s[0] >= args.warmup]
    first, last = after_warmup[0], after_warmup[-1]
    growth = (last[1] - first[1]) / first[1]
    print(f"RSS after warm-up {first[1]:.1f} MiB at {first[0]:.0f} s, at the end {last[1]:.1f} MiB at {last[0]:.0f} s: "
          f"growth {growth:+.1%} (target < 10 %); lag at the end {last[2]:,.0f} (> 0: the daemon was behind throughout "
          f"if every sample was > 0: {all(s[2] > 0 for s in samples)})")


if __name__ == "__main__":
    main()
