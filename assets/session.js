// When the login session ends (logout in another tab, 8 hours, a revoked session), Dash's
// requests get 401 and the page would silently stop updating: go to the login page instead.
(function () {
    const fetch = window.fetch.bind(window);
    let leaving = false;
    // A navigation of the page's own (the log-out form, a link) is underway: a request it
    // ends with a 401 must not send the page elsewhere ("You are logged out." would be lost).
    window.addEventListener('beforeunload', function () { leaving = true; });
    window.addEventListener('pageshow', function () { leaving = false; });
    window.fetch = function (resource, init) {
        return fetch(resource, init).then(function (response) {
            const url = typeof resource === 'string' ? resource : (resource && resource.url) || '';
            if (response.status === 401 && !leaving && url.indexOf('/_dash-') !== -1) {
                leaving = true;
                const next = window.location.pathname + window.location.search;
                window.location.assign('/login?next=' + encodeURIComponent(next));
            }
            return response;
        });
    };
})();
