"""surgecast SRE dashboard (placeholder until the dashboard issue lands).

Talks to the surgecast API over HTTP only, so it runs anywhere an SRE can reach the API.
"""

from __future__ import annotations

import os

import httpx
import pandas as pd
import streamlit as st

API_URL = os.environ.get("SURGECAST_API_URL", "http://127.0.0.1:8000")

st.set_page_config(page_title="surgecast", layout="wide")
st.title("surgecast")
st.caption(f"Predictive capacity and anomaly detection. API: {API_URL}")


@st.cache_data(ttl=30)
def fetch_recommendations(url: str) -> list[dict]:
    response = httpx.get(f"{url}/v1/recommendations", timeout=3.0)
    response.raise_for_status()
    return response.json()


try:
    recs = fetch_recommendations(API_URL)
except httpx.HTTPError as exc:
    st.error(f"The surgecast API at {API_URL} did not answer: {exc}")
    recs = []

if recs:
    cols = st.columns(len(recs))
    for col, rec in zip(cols, recs, strict=True):
        col.metric(
            rec["service"],
            f"{rec['recommended_replicas']} replicas",
            "stale" if rec["stale"] else None,
        )
    table = pd.DataFrame(recs)[
        ["service", "recommended_replicas", "stale", "at", "valid_until", "reason"]
    ]
    st.dataframe(table, hide_index=True, use_container_width=True)
else:
    st.info(
        "No recommendations yet: the first tick backfills 28 days of history and takes a minute."
    )
