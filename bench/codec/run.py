"""Codec benchmark: encode/decode rate (samples/s) and bytes per sample, protobuf vs JSON.

Run: python bench/codec/run.py [--batches 20000] [--samples 20]
"""

from __future__ import annotations

import argparse
import time

import orjson

from kemi_stats.codec import batch_from_dict, batch_to_dict, decode_batch, encode_batch
from kemi_stats.model import MetricKind, Sample, SampleBatch, Source


def make_batches(n: int, per: int) -> list[SampleBatch]:
    out = []
    for i in range(n):
        samples = [
            Sample(
                "ifHCInOctets",
                10**12 + i * 1000 + j,
                {"ifName": f"ge-0/0/{j}"},
                MetricKind.COUNTER64,
            )
            if j % 2 == 0
            else Sample("cpu_usage_pct", 12.5 + j, {"core": str(j)})
            for j in range(per)
        ]
        out.append(SampleBatch(f"net:core-sw-{i % 500}", 1_700_000_000_000 + i, Source.SNMP, samples,
                               {"site": "pangyo"}, 1234))  # fmt: skip
    return out


def measure(label: str, batches: list[SampleBatch], enc, dec) -> dict[str, float]:  # type: ignore[no-untyped-def]
    n_samples = sum(len(b.samples) for b in batches)
    t0 = time.perf_counter()
    encoded = [enc(b) for b in batches]
    t1 = time.perf_counter()
    for data in encoded:
        dec(data)
    t2 = time.perf_counter()
    size = sum(len(d) for d in encoded)
    return {
        "codec": label,
        "encode_samples_per_s": n_samples / (t1 - t0),
        "decode_samples_per_s": n_samples / (t2 - t1),
        "bytes_per_sample": size / n_samples,
        "bytes_per_batch": size / len(batches),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=20000)
    ap.add_argument("--samples", type=int, default=20)
    args = ap.parse_args()
    batches = make_batches(args.batches, args.samples)
    rows = [
        measure("protobuf", batches, encode_batch, decode_batch),
        measure("json (orjson)", batches, lambda b: orjson.dumps(batch_to_dict(b)),
                lambda d: batch_from_dict(orjson.loads(d))),
    ]  # fmt: skip
    print(f"{args.batches} batches x {args.samples} samples")
    print(
        f"| codec | encode samples/s | decode samples/s | bytes/sample | bytes per {args.samples}-sample batch |"
    )
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['codec']} | {r['encode_samples_per_s']:,.0f} | {r['decode_samples_per_s']:,.0f} "
              f"| {r['bytes_per_sample']:.1f} | {r['bytes_per_batch']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
