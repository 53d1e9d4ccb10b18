"""Interactive benchmark: the dashboard's real callbacks over HTTP (Flask's test client).

With a generated transaction log of ``customers x 20`` lines loaded, each round changes k
(or the algorithm) the way the browser does: the segmentation callback, which answers from
the cache when nothing needs fitting and else hands over to the background one (posted, then
polled until its worker process answers), then every callback that follows from the new
analysis store. Server time is measured per callback; the p50 and p95 over the rounds
and the largest response in bytes are reported.

    .venv/bin/python -m benchmarks.interactive --customers 50k,500k --rounds 7
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from app import create_app
from benchmarks import generate
from dashapp import accounts
from dashapp.analysis import Controls
from dashapp.services import Services
from dashapp.settings import Limits, Settings
from layouts import ids

DEFAULT_DATA = Path(os.environ.get("PERSONA_BENCH_DATA", "/tmp/persona-bench"))
OUT = Path(__file__).resolve().parent / "out"
#: The callbacks that follow a new analysis store, keyed by their output in callback_map.
FOLLOWERS = {
    "views": ids.SUMMARY,
    "cross-section": ids.SCATTER_2D,
    "bubble": ids.BUBBLE,
    "personas": ids.RADAR,
    "grid": ids.GRID_WRAP,
    "stability": "segments-metric-stability",
}
#: Cards filled after the figures, each by its own background job: stability (every
#: change) and the silhouette of a fit the sweep did not make (asked for by "views").
AFTER = ("stability", "silhouette")


class Client:
    """Posts callbacks as the renderer does, including the background-callback protocol."""

    def __init__(self, app, http=None):
        # ``http``: a test client already logged in (the Dash endpoints require a login).
        self.app = app
        self.http = http or app.server.test_client()
        page = self.http.get("/").get_data(as_text=True)
        config = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>',
                           page, re.S)
        self.end_id = json.loads(config.group(1)).get("end_id", "")

    def _entry(self, output_id: str) -> tuple[str, dict]:
        # An output shared through allow_duplicate ("id.prop@hash") is found only when no
        # callback writes it as its own (ANALYSIS_REQUEST: the callback that answers from the
        # cache; ANALYSIS_JOB: the background job).
        found = []
        for key, entry in self.app.callback_map.items():
            outputs = key.strip(".").split("...")
            for o in outputs:
                if o.split("@")[0].rsplit(".", 1)[0] == output_id:
                    found.append(("@" in o, key, entry))
        if not found:
            raise KeyError(output_id)
        _, key, entry = min(found, key=lambda f: f[0])
        return key, entry

    def segment(self, values: dict[str, object],
                timeout: float = 600.0) -> tuple[float, int, dict]:
        """A change of the segmentation controls as the browser runs it: the callback that
        answers from the cache, then, when it hands over a request, the background job.

        Returns the server seconds of both, the larger response and the last body; the
        job's answer is given as the browser applies it (:meth:`applied`).
        """
        seconds, size, data = self.call(ids.ANALYSIS_REQUEST, values)
        request = data.get("response", {}).get(ids.ANALYSIS_REQUEST)
        if request is None:
            return seconds, size, data
        more, other, answer = self.job(request["data"], timeout)
        return seconds + more, max(size, other), self.applied(answer, request["data"])

    def job(self, request: object, timeout: float = 600.0) -> tuple[float, int, dict]:
        """The background segmentation for an ANALYSIS_REQUEST: seconds, response bytes and
        its answer (``{"request", "state", "alert"}``, see ``callbacks.segments.job_answer``)."""
        seconds, size, data = self.call(ids.ANALYSIS_JOB,
                                        {f"{ids.ANALYSIS_REQUEST}.data": request}, timeout)
        return seconds, size, data["response"][ids.ANALYSIS_JOB]["data"]

    @staticmethod
    def applied(answer: dict, current: object) -> dict:
        """A job's answer as the browser's ``persona.jobAnswer`` applies it while the controls
        are ``current`` (a request): the body a plain callback writing ANALYSIS (unless the
        answer has none) and SEGMENT_ALERT would have sent; nothing for another request."""
        if answer.get("request") != current:
            return {"response": {}}
        response = {ids.SEGMENT_ALERT: {"children": answer.get("alert")}}
        if answer.get("state") is not None:
            response[ids.ANALYSIS] = {"data": answer["state"]}
        return {"response": response}

    def call(self, output_id: str, values: dict[str, object],
             timeout: float = 600.0, changed: str | None = None) -> tuple[float, int, dict]:
        """Run the callback writing ``output_id``; ``values`` maps "id.prop" to a value;
        ``changed`` ("id.prop") is the input that fired it (by default the first; ``""``:
        none, as on the page's first load).

        Returns the server seconds (first post to final answer, polls included), the size
        of the final response in bytes and its parsed body.
        """
        key, entry = self._entry(output_id)
        outputs = []
        for part in key.strip(".").split("..."):
            name, prop = part.split("@")[0].rsplit(".", 1)
            outputs.append({"id": name, "property": prop})

        def item(spec):
            if spec["id"].startswith("{"):  # a pattern (ALL): no such components on the page
                return values.get(f"{spec['id']}.{spec['property']}", [])
            return {"id": spec["id"], "property": spec["property"],
                    "value": values.get(f"{spec['id']}.{spec['property']}")}

        body = {
            "output": key,
            "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": [item(i) for i in entry["inputs"]],
            "state": [item(s) for s in entry["state"]],
            "changedPropIds": [f"{entry['inputs'][0]['id']}.{entry['inputs'][0]['property']}"]
            if changed is None else [changed] if changed else [],
        }
        url = f"/_dash-update-component?endId={self.end_id}"
        start = time.perf_counter()
        answer = self.http.post(url, json=body)
        data = answer.get_json()
        if entry.get("background"):
            handles = f"&cacheKey={data['cacheKey']}&job={data['job']}"
            while True:
                answer = self.http.post(url + handles, json=body)
                data = answer.get_json() if answer.status_code == 200 else {}
                if answer.status_code == 200 and "response" in (data or {}):
                    break
                if answer.status_code not in (200, 204):
                    raise RuntimeError(f"{output_id}: HTTP {answer.status_code}")
                if time.perf_counter() - start > timeout:
                    raise TimeoutError(f"{output_id}: no answer in {timeout:.0f} s")
                time.sleep(0.02)
        elapsed = time.perf_counter() - start
        if answer.status_code != 200:
            raise RuntimeError(f"{output_id}: HTTP {answer.status_code}")
        return elapsed, len(answer.get_data()), data


BENCH_EMAIL = "bench@example.com"
BENCH_PASSWORD = "benchmark password"


def logged_in(app, email: str, password: str):
    """A test client of ``app`` logged in through the login form; its POSTs carry the CSRF
    header the way Dash's renderer sends it."""
    http = app.server.test_client()
    page = http.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    http.post("/login", data={"email": email, "password": password, "csrf_token": token})
    csrf = http.get_cookie("_csrf_token")
    http.environ_base["HTTP_X_CSRFTOKEN"] = csrf.value if csrf else ""
    return http


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_size(customers: int, rounds: int, data_dir: Path, work: Path) -> dict:
    dataset = generate.ensure(customers * generate.LINES_PER_CUSTOMER, data_dir)
    settings = Settings(instance_dir=work / f"instance-{customers}",
                        limits=Limits(max_bytes=4 * 2**30, max_rows=100_000_000))
    warm = Services(settings)
    user = accounts.create_user(warm.db, BENCH_EMAIL, BENCH_PASSWORD)
    started = time.perf_counter()
    key = warm.add_dataset(user, dataset.parquet.read_bytes(), dataset.parquet.name).id
    prepared = warm.prepared(user, key)
    prepare_seconds = time.perf_counter() - started
    store = {"dataset": key, "mapping": None, "dayfirst": None}
    features = list(prepared.default_features)
    # The first analysis sweeps k = 2..10 once; later changes of k reuse that sweep.
    started = time.perf_counter()
    warm.analysis(user, key, None, Controls(features=tuple(features)))
    first_seconds = time.perf_counter() - started

    app = create_app(settings)
    client = Client(app, logged_in(app, BENCH_EMAIL, BENCH_PASSWORD))
    client.call(ids.DATASET_INFO, {f"{ids.DATASET}.data": store})
    ks = (5, 6, 4, 3, 7, 5, 6, 4, 3, 7)
    # A change of algorithm keeps k; the first change to each algorithm sweeps k for it
    # (its k chart), later ones find that sweep cached.
    plans = {
        "change k": [("kmeans", k) for k in ks][:rounds],
        "change algorithm": [(a, k) for k in ks for a in ("minibatch", "gmm", "kmeans")]
        [:rounds],
    }
    timings: dict[str, dict[str, list[float]]] = {}
    sizes: dict[str, int] = {}
    for phase, plan in plans.items():
        timing = timings.setdefault(phase, {"segmentation": []})
        for algorithm, k in plan:
            controls = {f"{ids.DATASET}.data": store, f"{ids.ALGORITHM}.value": algorithm,
                        f"{ids.K_AUTO}.value": False, f"{ids.K_SLIDER}.value": k,
                        f"{ids.FEATURES}.value": features, f"{ids.SCALING}.value": "standard",
                        f"{ids.PCA}.value": False, f"{ids.SEED}.value": 0}
            seconds, size, data = client.segment(controls)
            timing["segmentation"].append(seconds)
            sizes["segmentation"] = max(sizes.get("segmentation", 0), size)
            state = data["response"][ids.ANALYSIS]["data"]
            follow = {f"{ids.ANALYSIS}.data": state, f"{ids.SELECTION}.data": [],
                      f"{ids.X_AXIS}.value": features[0], f"{ids.Y_AXIS}.value": features[-1],
                      f"{ids.BUBBLE_X}.value": features[0],
                      f"{ids.BUBBLE_Y}.value": features[-1],
                      f"{ids.BUBBLE_SIZE}.value": features[1]}
            for name, output in FOLLOWERS.items():
                seconds, size, body = client.call(output, follow)
                timing.setdefault(name, []).append(seconds)
                sizes[name] = max(sizes.get(name, 0), size)
                asked = body.get("response", {}).get(ids.SILHOUETTE_REQUEST)
                if asked is not None:
                    seconds, size, _ = client.call(
                        ids.SILHOUETTE_ANSWER, {f"{ids.SILHOUETTE_REQUEST}.data": asked["data"]})
                    timing.setdefault("silhouette", []).append(seconds)
                    sizes["silhouette"] = max(sizes.get("silhouette", 0), size)
    # The figures one change brings: the segmentation and every view of it. The cards in
    # AFTER fill afterwards, from their own background jobs, and are reported on their own
    # (the silhouette over the rounds that asked for it).
    phases = {}
    for phase, timing in timings.items():
        figures = [name for name in timing if name not in AFTER]
        totals = [sum(timing[name][i] for name in figures) for i in range(len(plans[phase]))]
        phases[phase] = {
            "plan": plans[phase],
            "callbacks": {name: {"p50": statistics.median(v), "p95": _percentile(v, 0.95),
                                 "n": len(v)} for name, v in timing.items()},
            "total": {"p50": statistics.median(totals), "p95": _percentile(totals, 0.95)},
            "rounds": [{"algorithm": a, "k": k, "figures_s": t,
                        "segmentation_s": timing["segmentation"][i]}
                       for i, ((a, k), t) in enumerate(zip(plans[phase], totals))],
        }
    return {
        "customers": len(prepared.customers),
        "lines": dataset.lines,
        "prepare_s": prepare_seconds,
        "first_analysis_s": first_seconds,
        "rounds": rounds,
        "phases": phases,
        "largest_response_bytes": sizes,
        "largest_response": max(sizes.values()),
    }


def report(results: list[dict]) -> str:
    lines = ["| customers | change | callback | p50 ms | p95 ms | largest response KB |",
             "| ---: | --- | --- | ---: | ---: | ---: |"]
    for r in results:
        for phase, p in r["phases"].items():
            for name, t in p["callbacks"].items():
                size = r["largest_response_bytes"].get(name, 0) / 1024
                if t.get("n", r["rounds"]) < r["rounds"]:
                    name = f"{name} ({t['n']} of {r['rounds']} rounds)"
                lines.append(f"| {r['customers']:,} | {phase} | {name} | "
                             f"{t['p50'] * 1000:,.0f} | {t['p95'] * 1000:,.0f} | {size:,.1f} |")
            lines.append(f"| {r['customers']:,} | {phase} | **figures after one change** | "
                         f"**{p['total']['p50'] * 1000:,.0f}** | "
                         f"**{p['total']['p95'] * 1000:,.0f}** | |")
    notes = [f"- {r['customers']:,} customers ({r['lines']:,} lines): preparing the file "
             f"{r['prepare_s']:.1f} s once; first analysis with the k sweep "
             f"{r['first_analysis_s']:.1f} s once; largest response "
             f"{r['largest_response']:,} bytes." for r in results]
    return "\n".join(lines + [""] + notes) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="50k,500k",
                        help="comma-separated sizes, e.g. 50k,500k")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="persona-interactive-") as work:
        for size in args.customers.split(","):
            results.append(run_size(generate.parse_size(size), args.rounds, args.data_dir,
                                    Path(work)))
            print(report(results[-1:]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "interactive.json").write_text(json.dumps(results, indent=2))
    text = report(results)
    (args.out / "interactive.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
