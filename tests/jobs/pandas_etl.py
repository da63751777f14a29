"""Daily sales ETL: generate raw CSV shards, then load, clean, aggregate and write reports (jobs: external-state: removes its files at the end)."""
import os
import tempfile
import time

import numpy as np
import pandas as pd

REGIONS = ["north", "south", "east", "west"]
PRODUCTS = ["widget", "gadget", "gizmo", "doohickey", "sprocket"]


def generate_shards(folder, n_shards, rows, seed=7):
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_shards):
        df = pd.DataFrame({
            "order_id": np.arange(i * rows, (i + 1) * rows),
            "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, rows), unit="D"),
            "region": rng.choice(REGIONS, rows),
            "product": rng.choice(PRODUCTS, rows),
            "qty": rng.integers(1, 20, rows),
            "unit_price": rng.uniform(1, 100, rows).round(2),
        })
        df.loc[rng.random(rows) < 0.01, "qty"] = -1  # bad records
        path = os.path.join(folder, f"sales_{i:03d}.csv")
        df.to_csv(path, index=False)
        paths.append(path)
    return paths


def transform(df):
    df = df[df["qty"] > 0].copy()
    df["revenue"] = df["qty"] * df["unit_price"]
    df["month"] = pd.to_datetime(df["day"]).dt.to_period("M").astype(str)
    return df


def main():
    with tempfile.TemporaryDirectory(prefix="etl-") as tmp:
        shards = generate_shards(tmp, 24, 4000)
        out_dir = os.path.join(tmp, "out")
        os.makedirs(out_dir)
        totals = None
        for n, path in enumerate(shards):
            df = transform(pd.read_csv(path))
            agg = df.groupby(["region", "product"], as_index=False).agg(revenue=("revenue", "sum"), orders=("order_id", "count"))
            agg.to_csv(os.path.join(out_dir, f"agg_{n:03d}.csv"), index=False)
            totals = agg if totals is None else pd.concat([totals, agg]).groupby(["region", "product"], as_index=False).sum()
            top = agg.sort_values("revenue", ascending=False).iloc[0]
            print(f"shard {n:02d}: rows={len(df)} top={top['region']}/{top['product']} {top['revenue']:.2f}", flush=True)
            time.sleep(0.12)
        final = totals.sort_values(["region", "product"]).reset_index(drop=True)
        final.to_csv(os.path.join(out_dir, "totals.csv"), index=False)
        by_region = final.groupby("region")["revenue"].sum().round(2)
        for region, rev in by_region.items():
            print(f"region {region}: {rev:.2f}")
        print(f"result: outputs={len(os.listdir(out_dir))} revenue={final['revenue'].sum():.2f} orders={int(final['orders'].sum())}")


if __name__ == "__main__":
    main()
