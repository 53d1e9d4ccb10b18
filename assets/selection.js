// Pure-UI reactions of Persona Engine: the shared segment selection, highlighting, the
// grid's filter model, the controls drawer and which segmentation answer to show. Loaded by
// Dash from assets/.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    persona: {
        DIMMED: 0.15,

        // Which component fired, as a string id or an object id (pattern-matching).
        _trigger: function () {
            const triggered = (window.dash_clientside.callback_context || {}).triggered || [];
            if (!triggered.length) { return {id: null, value: null}; }
            const propId = triggered[0].prop_id || "";
            const raw = propId.slice(0, propId.lastIndexOf("."));
            let id = raw;
            if (raw.startsWith("{")) {
                try { id = JSON.parse(raw); } catch (e) { id = raw; }
            }
            return {id: id, value: triggered[0].value};
        },

        // A bar or a persona card toggles its segment in the multi-select; a legend click
        // (plotly hides or shows traces) selects the segments still shown in that chart.
        choose: function () {
            const args = Array.prototype.slice.call(arguments);
            const clickData = args[0];
            const current = args[args.length - 1];
            const trigger = window.dash_clientside.persona._trigger();
            let segment = null;
            if (typeof trigger.id === "string" && trigger.id !== "segments-bars") {
                return window.dash_clientside.persona._fromLegend(trigger.id, current);
            }
            if (trigger.id && typeof trigger.id === "object") {
                if (!trigger.value) { return window.dash_clientside.no_update; }
                segment = Number(trigger.id.index);
            } else if (clickData && clickData.points && clickData.points.length) {
                const custom = clickData.points[0].customdata;
                segment = Number(Array.isArray(custom) ? custom[0] : custom);
            }
            if (segment === null || Number.isNaN(segment)) {
                return window.dash_clientside.no_update;
            }
            const chosen = (current || []).map(Number);
            return chosen.includes(segment)
                ? chosen.filter(function (s) { return s !== segment; })
                : chosen.concat([segment]);
        },

        _fromLegend: function (graphId, current) {
            const gd = document.querySelector("#" + graphId + " .js-plotly-plot");
            if (!gd || !gd.data) { return window.dash_clientside.no_update; }
            const all = [];
            const shown = [];
            gd.data.forEach(function (trace) {
                if (!trace.meta || trace.meta.segment === undefined) { return; }
                all.push(Number(trace.meta.segment));
                if (trace.visible !== "legendonly" && trace.visible !== false) {
                    shown.push(Number(trace.meta.segment));
                }
            });
            const next = shown.length === all.length ? [] : shown;
            const same = next.length === (current || []).length &&
                next.every(function (s) { return (current || []).map(Number).includes(s); });
            return same ? window.dash_clientside.no_update : next;
        },

        selection: function (value) {
            return (value || []).map(Number);
        },

        // Same rule as dashapp.figures.highlight: dim the segments not chosen.
        highlight: function (selection, figure) {
            if (!figure || !figure.data) { return window.dash_clientside.no_update; }
            const chosen = new Set((selection || []).map(Number));
            const dimmed = window.dash_clientside.persona.DIMMED;
            const data = figure.data.map(function (trace) {
                if (!trace.meta || trace.meta.segment === undefined) { return trace; }
                const on = chosen.size === 0 || chosen.has(Number(trace.meta.segment));
                return Object.assign({}, trace, {opacity: on ? 1 : dimmed});
            });
            return Object.assign({}, figure, {data: data});
        },

        cardClasses: function (selection, ids) {
            const chosen = (selection || []).map(Number);
            return (ids || []).map(function (id) {
                let cls = "pe-persona-card mb-2";
                if (chosen.length) {
                    cls += chosen.includes(Number(id.index)) ? " pe-selected" : " pe-dimmed";
                }
                return cls;
            });
        },

        // The selection and the range sliders as AG Grid's filter model; filters a user typed
        // into other columns are kept.
        filterModel: function (selection, values, rangeIds, mins, maxs, current) {
            const model = {};
            const chosen = (selection || []).map(Number);
            if (chosen.length === 1) {
                model.segment = {filterType: "number", type: "equals", filter: chosen[0]};
            } else if (chosen.length > 1) {
                model.segment = {
                    filterType: "number", operator: "OR",
                    conditions: chosen.map(function (s) {
                        return {filterType: "number", type: "equals", filter: s};
                    }),
                };
            }
            const ranged = new Set();
            (rangeIds || []).forEach(function (rid, i) {
                ranged.add(rid.index);
                const v = (values || [])[i];
                if (v && (v[0] > mins[i] || v[1] < maxs[i])) {
                    model[rid.index] = {filterType: "number", type: "inRange",
                                        filter: v[0], filterTo: v[1]};
                }
            });
            Object.keys(current || {}).forEach(function (column) {
                if (column !== "segment" && !ranged.has(column) && !(column in model)) {
                    model[column] = current[column];
                }
            });
            return model;
        },

        rowCount: function (shown, all, rowModelType) {
            // A grid paged from the server reports its count from the server.
            if (rowModelType === "infinite") { return window.dash_clientside.no_update; }
            const total = (all || []).length;
            const n = shown ? shown.length : total;
            return n.toLocaleString("en-US") + " of " + total.toLocaleString("en-US") +
                " customers shown";
        },

        toggleControls: function (openClicks, closeClicks, className) {
            const base = (className || "").replace(/\s*\bshow\b/g, "");
            const trigger = window.dash_clientside.persona._trigger();
            return trigger.id === "shell-controls-open" ? base + " show" : base;
        },

        // Equal JSON values; a missing key or prop (undefined) equals null, as it does once
        // it has been to the server and back.
        _same: function (a, b) {
            if (a === b) { return true; }
            if (a === null || a === undefined || b === null || b === undefined) {
                return (a === null || a === undefined) && (b === null || b === undefined);
            }
            if (typeof a !== "object" || typeof b !== "object" ||
                Array.isArray(a) !== Array.isArray(b) ||
                (Array.isArray(a) && a.length !== b.length)) { return false; }
            const same = window.dash_clientside.persona._same;
            const keys = new Set(Object.keys(a).concat(Object.keys(b)));
            for (const key of keys) {
                if (!same(a[key], b[key])) { return false; }
            }
            return true;
        },

        // The background segmentation's answer (ANALYSIS_JOB: request, state, alert) becomes
        // the analysis and the alert only while the controls are still those it answered: a
        // job that ended just before a later change was answered from the cache, and was
        // polled just after it, must not put the older segmentation back. The arguments are
        // the controls in callbacks.segments.REQUEST_KEYS order.
        jobAnswer: function (job, store, algorithm, auto, k, features, scaling, pca, seed) {
            const noUpdate = window.dash_clientside.no_update;
            const now = {store: store, algorithm: algorithm, auto: auto, k: k,
                         features: features, scaling: scaling, pca: pca, seed: seed};
            if (!job || typeof job !== "object" ||
                !window.dash_clientside.persona._same(job.request, now)) {
                return [noUpdate, noUpdate];
            }
            const state = job.state === null || job.state === undefined ? noUpdate : job.state;
            return [state, job.alert === undefined ? null : job.alert];
        },

        // The silhouette computed after a fit's figures ({state, text}), shown only while
        // the analysis shown is the one it was computed for.
        silhouetteAnswer: function (answer, state) {
            if (!answer || typeof answer !== "object" ||
                !window.dash_clientside.persona._same(answer.state, state)) {
                return window.dash_clientside.no_update;
            }
            return answer.text;
        },
    },
});
