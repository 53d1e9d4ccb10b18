"""Segments: run the segmentation in the background, then draw every view of it."""

from __future__ import annotations

import logging

from dash import ClientsideFunction, Dash, Input, Output, State, html, no_update

from callbacks.common import alert, column_choice, current_user, kept, loaded, segments
from dashapp import figures, views
from dashapp.analysis import AUTO, Controls
from dashapp.errors import PersonaError
from dashapp.services import Services, checked_controls
from layouts import ids
from layouts.segments import METRIC_NAMES, metric_id

log = logging.getLogger(__name__)


NO_DATASET = "No dataset is open: load a sample or upload a file."


def controls_from(algorithm, auto, k, features, scaling, pca, seed) -> Controls:
    """The controls as the browser sent them, checked (PersonaError when out of range)."""
    return checked_controls({"algorithm": algorithm, "k": AUTO if auto else k,
                             "features": features, "scaling": scaling, "pca": pca,
                             "seed": seed})


#: What a segmentation request (ANALYSIS_REQUEST) holds: the dataset store and the controls
#: as the browser sent them; the background job checks them again.
REQUEST_KEYS = ("store", "algorithm", "auto", "k", "features", "scaling", "pca", "seed")


def request_of(store, algorithm, auto, k, features, scaling, pca, seed) -> dict:
    return dict(zip(REQUEST_KEYS, (store, algorithm, auto, k, features, scaling, pca, seed)))


def job_answer(request, state: dict | None = None, alert=None) -> dict:
    """What the background job writes (ANALYSIS_JOB): the request it answered, the analysis
    store (``None``: keep the one shown) and the alert. The browser applies it only while the
    controls still equal the request (``persona.jobAnswer`` in assets/selection.js): a job
    that ended before a later change was answered from the cache, but was polled after it,
    must not put back an older segmentation."""
    return {"request": request, "state": state, "alert": alert}


def axis_defaults(features: list[str]) -> tuple[str, str, str, str, str]:
    """x and y of the cross-section; x, y and size of the bubbles."""
    f = features + features[-1:] * 3 if features else ["", "", ""]
    if len(features) >= 3:
        return f[0], f[2], f[0], f[2], f[1]
    return f[0], f[1], f[0], f[1], f[1]


def register(app: Dash, services: Services, session_key=None) -> None:
    # Background results are keyed by user and browser session on the app's manager
    # (``cache_by`` in app.py: Dash 4 ignores a callback's own), and each job takes its user
    # from the session cookie it was sent with, never from a store.
    @app.callback(
        Output(ids.FEATURES, "options"),
        Output(ids.FEATURES, "value"),
        Output(ids.X_AXIS, "options"), Output(ids.X_AXIS, "value"),
        Output(ids.Y_AXIS, "options"), Output(ids.Y_AXIS, "value"),
        Output(ids.BUBBLE_X, "options"), Output(ids.BUBBLE_X, "value"),
        Output(ids.BUBBLE_Y, "options"), Output(ids.BUBBLE_Y, "value"),
        Output(ids.BUBBLE_SIZE, "options"), Output(ids.BUBBLE_SIZE, "value"),
        Input(ids.DATASET, "data"),
        prevent_initial_call=True,
    )
    def _features(store):
        if store is None:
            return ([], [], *([], None) * 5)
        try:
            prepared = services.prepared_for(current_user(), store)
        except PersonaError:
            return (no_update,) * 12
        options = list(prepared.numeric_features)
        x, y, bx, by, size = axis_defaults(list(prepared.default_features))
        return (options, list(prepared.default_features), options, x, options, y,
                options, bx, options, by, options, size)

    app.clientside_callback(
        "function (auto, algorithm) { return Boolean(auto) || algorithm === 'dbscan'; }",
        Output(ids.K_SLIDER, "disabled"),
        Input(ids.K_AUTO, "value"),
        Input(ids.ALGORITHM, "value"),
    )

    controls_inputs = [Input(ids.DATASET, "data"), Input(ids.ALGORITHM, "value"),
                       Input(ids.K_AUTO, "value"), Input(ids.K_SLIDER, "value"),
                       Input(ids.FEATURES, "value"), Input(ids.SCALING, "value"),
                       Input(ids.PCA, "value"), Input(ids.SEED, "value")]

    def checked(user, request):
        """The controls and prepared data a request names (PersonaError when wrong)."""
        request = request if isinstance(request, dict) else {}
        store = request.get("store")
        values = [request.get(name) for name in REQUEST_KEYS[1:]]
        controls = controls_from(*values)
        prepared = services.prepared_for(user, store)
        if set(controls.features) - set(prepared.numeric_features):
            # The checklist still shows the previous dataset's features.
            controls = controls_from(*values[:3], [], *values[4:])
        elif not controls.features:
            raise PersonaError("No features are ticked: tick at least one numeric "
                               "feature to segment on.")
        return store, controls

    def state_of(store, controls):
        # The dataset's version too (callbacks.data.store_of): the stability and silhouette
        # jobs take this state as their input, and Dash keeps their results by input.
        return {"dataset": store["dataset"], "mapping": store.get("mapping"),
                "dayfirst": store.get("dayfirst"), "version": store.get("version"),
                "controls": controls.to_dict()}

    # A change whose analysis needs no fit (a k the sweep fitted, an analysis seen before)
    # is answered here, in the web process, in milliseconds, and so is one that needs a
    # single quick fit (services.quick_fit: another algorithm on up to 100,000 customers,
    # a fifth of a second); anything else to fit (a sweep, a large or slow fit) is handed to
    # the background job below (progress bar, cancel button) through ANALYSIS_REQUEST.
    @app.callback(
        Output(ids.ANALYSIS, "data", allow_duplicate=True),
        Output(ids.SEGMENT_ALERT, "children", allow_duplicate=True),
        Output(ids.ANALYSIS_REQUEST, "data"),
        *controls_inputs,
        prevent_initial_call=True,
    )
    def _segment(store, algorithm, auto, k, features, scaling, pca, seed):
        if store is None:
            return None, None, no_update  # the last dataset was deleted: every view empties
        request = request_of(store, algorithm, auto, k, features, scaling, pca, seed)
        try:
            user = current_user()
            if not services.is_prepared(user, store):
                return no_update, no_update, request
            store, controls = checked(user, request)
            found = services.cached_analysis(user, store["dataset"], store.get("mapping"),
                                             controls, dayfirst=store.get("dayfirst"),
                                             quick=True)
        except PersonaError as err:
            return no_update, alert(str(err)), no_update
        except Exception:  # the background job tries again and reports what it finds
            log.exception("cached segmentation failed")
            return no_update, no_update, request
        if found is None:
            return no_update, no_update, request
        return state_of(store, controls), None, no_update

    @app.callback(
        Output(ids.ANALYSIS_JOB, "data"),
        Input(ids.ANALYSIS_REQUEST, "data"),
        background=True,
        running=[
            (Output(ids.PROGRESS_WRAP, "style"), {"visibility": "visible"},
             {"visibility": "hidden"}),
            (Output(ids.CANCEL, "disabled"), False, True),
        ],
        progress=[Output(ids.PROGRESS, "value"), Output(ids.PROGRESS, "label")],
        progress_default=[0, ""],
        # A new change of the controls ends a fit still running (an answer from the cache
        # must not be overwritten by the older fit when it finishes); one that ended already
        # is kept out by jobAnswer below.
        cancel=[Input(ids.CANCEL, "n_clicks"), *controls_inputs],
        interval=250,
        prevent_initial_call=True,
    )
    def _analyse(set_progress, request):
        try:
            user = current_user()  # in the worker too: from the session cookie it was sent
            store, controls = checked(user, request)
            services.analysis(  # computed and cached here, in the worker
                user, store["dataset"], store.get("mapping"), controls,
                progress=lambda step, steps, what: set_progress((step, what)),
                dayfirst=store.get("dayfirst"))
        except PersonaError as err:
            return job_answer(request, alert=alert(str(err)))
        except Exception as err:  # a bug must not leave a traceback in the browser
            log.exception("segmentation failed")
            return job_answer(request, alert=alert(
                f"The segmentation failed ({type(err).__name__}); the previous result is "
                "still shown."))
        return job_answer(request, state_of(store, controls))

    app.clientside_callback(
        ClientsideFunction("persona", "jobAnswer"),
        Output(ids.ANALYSIS, "data", allow_duplicate=True),
        Output(ids.SEGMENT_ALERT, "children", allow_duplicate=True),
        Input(ids.ANALYSIS_JOB, "data"),
        *(State(i.component_id, i.component_property) for i in controls_inputs),
        prevent_initial_call=True,
    )

    metric_outputs = [Output(metric_id(name), "children")
                      for name in METRIC_NAMES if name != "stability"]

    @app.callback(
        Output(ids.SUMMARY, "children"),
        Output(ids.NOTICES, "children"),
        *metric_outputs,
        Output(ids.K_CHART, "figure"),
        Output(ids.K_REASON, "children"),
        Output(ids.SCATTER_3D, "figure"),
        Output(ids.BARS, "figure"),
        Output(ids.RFM_CLUSTER, "figure"),
        Output(ids.SILHOUETTE_REQUEST, "data"),
        Input(ids.ANALYSIS, "data"),
        prevent_initial_call=True,
    )
    def _views(state):
        if state is None:
            empty = figures.empty_figure(NO_DATASET)
            return (NO_DATASET, [], *(["-"] * (len(metric_outputs))), empty, "", empty,
                    empty, empty, no_update)
        user = current_user()
        prepared, analysis = loaded(services, user, state)
        with kept():
            name = services.dataset(user, state["dataset"]).name
        with kept():  # a silhouette computed when this analysis was shown before
            analysis = services.completed(user, state, analysis, compute=False)
        seg = analysis.segmentation
        customers = prepared.customers
        names = {p.segment: p.name for p in analysis.personas}
        metrics = views.metric_values(analysis)
        notices = [*prepared.ingested.notices, *seg.notices, *analysis.notices]
        if seg.metrics.silhouette_sample:
            notices.append(seg.metrics.silhouette_note)
        if analysis.sweep is None:
            k_chart = figures.empty_figure("DBSCAN finds the number of segments itself.")
            reason = ""
        else:
            k_chart = figures.k_selection_json(analysis.sweep.table,
                                               analysis.sweep.recommended, analysis.sweep.elbow)
            reason = analysis.sweep.reason
        features = list(seg.features)
        if seg.params.pca:
            points = figures.pca_components(customers[features], 3)
            points["customer_id"] = customers["customer_id"].to_numpy()
            axes = tuple(points.columns[:3])
            scatter = figures.scatter_3d(points, seg.labels, names, axes) if len(axes) == 3 \
                else figures.empty_figure("Three components are needed for a 3D view.")
        elif len(features) >= 3:
            scatter = figures.scatter_3d(customers, seg.labels, names, tuple(features[:3]))
        else:
            scatter = figures.empty_figure("A 3D view needs three features; see the "
                                           "cross-section below.")
        if "rfm_segment" in customers:
            crossing = figures.rfm_cluster_heatmap(customers["rfm_segment"], seg.labels, names)
        else:
            crossing = figures.empty_figure("Named RFM segments need a transaction log.")
        return (views.headline(prepared, analysis, name),
                [html.Div(n, className="mb-1") for n in notices],
                *(metrics[name] for name in METRIC_NAMES if name != "stability"),
                k_chart, reason, scatter, figures.segment_bars(analysis.personas), crossing,
                state if seg.metrics.pending else no_update)

    # The silhouette of a fit the sweep did not make, after its figures (_views shows
    # views.PENDING meanwhile). A newer analysis cancels the job; an answer that ended just
    # before it is kept out by persona.silhouetteAnswer.
    @app.callback(
        Output(ids.SILHOUETTE_ANSWER, "data"),
        Input(ids.SILHOUETTE_REQUEST, "data"),
        background=True,
        cancel=[Input(ids.ANALYSIS, "data")],
        interval=250,
        prevent_initial_call=True,
    )
    def _silhouette(state):
        if not isinstance(state, dict):
            return no_update
        try:
            metrics = services.metrics(current_user(), state.get("dataset"),
                                       state.get("mapping"), state.get("controls"),
                                       state.get("dayfirst"))
            text = views.silhouette_value(metrics)
        except PersonaError as err:
            text = str(err)
        except Exception:  # a bug must not leave a traceback in the browser
            log.exception("silhouette failed")
            text = "n/a"
        return {"state": state, "text": text}

    app.clientside_callback(
        ClientsideFunction("persona", "silhouetteAnswer"),
        Output(metric_id("silhouette"), "children", allow_duplicate=True),
        Input(ids.SILHOUETTE_ANSWER, "data"),
        State(ids.ANALYSIS, "data"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.SCATTER_2D, "figure"),
        Input(ids.ANALYSIS, "data"),
        Input(ids.X_AXIS, "value"),
        Input(ids.Y_AXIS, "value"),
        State(ids.SELECTION, "data"),
        prevent_initial_call=True,
    )
    def _cross(state, x, y, selected):
        if state is None:
            return figures.empty_figure(NO_DATASET)
        prepared, analysis = loaded(services, current_user(), state)
        x, y = (column_choice(v, prepared.numeric_features) for v in (x, y))
        if x is None or y is None:
            return figures.empty_figure("Choose two features.")
        names = {p.segment: p.name for p in analysis.personas}
        fig = figures.scatter_2d(prepared.customers, analysis.segmentation.labels, names, x, y)
        return figures.highlight(fig, segments(selected))

    @app.callback(
        Output(ids.BUBBLE, "figure"),
        Input(ids.ANALYSIS, "data"),
        Input(ids.BUBBLE_X, "value"),
        Input(ids.BUBBLE_Y, "value"),
        Input(ids.BUBBLE_SIZE, "value"),
        State(ids.SELECTION, "data"),
        prevent_initial_call=True,
    )
    def _bubble(state, x, y, size, selected):
        if state is None:
            return figures.empty_figure(NO_DATASET)
        prepared, analysis = loaded(services, current_user(), state)
        x, y, size = (column_choice(v, prepared.numeric_features) for v in (x, y, size))
        if x is None or y is None or size is None:
            return figures.empty_figure("Choose x, y and size.")
        names = {p.segment: p.name for p in analysis.personas}
        fig = figures.bubble(prepared.customers, analysis.segmentation.labels, names, x, y, size)
        return figures.highlight(fig, segments(selected))

    @app.callback(
        Output(metric_id("stability"), "children"),
        Input(ids.ANALYSIS, "data"),
        background=True,
        running=[(Output(ids.STABILITY_RUNNING, "spinner_style"), {"visibility": "visible"},
                  {"visibility": "hidden"})],
        interval=400,
        prevent_initial_call=True,
    )
    def _stability(state):
        if not isinstance(state, dict):
            return "-"
        try:
            found, note = services.stability(current_user(), state.get("dataset"),
                                             state.get("mapping"), state.get("controls"),
                                             state.get("dayfirst"))
        except PersonaError as err:
            return str(err)
        except Exception:  # a bug must not leave a traceback in the browser
            log.exception("stability failed")
            return "n/a"
        text = views.stability_value(found)
        return html.Span(text, title=note) if note else text
