"""Every component id that a callback or a test touches; layouts and callbacks both import it."""

# Shell: stores, navigation, the background job's progress
DATASET = "dataset-store"  # {"dataset": id, "mapping", "dayfirst"}; None: no dataset
ANALYSIS = "analysis-store"  # {"dataset": id, "mapping", "dayfirst", "controls"}
# The controls handed to the background segmentation when something must be fitted.
ANALYSIS_REQUEST = "analysis-request-store"
# The background job's answer, {"request", "state", "alert"}: the browser applies it to
# ANALYSIS and SEGMENT_ALERT only while the controls still equal its request.
ANALYSIS_JOB = "analysis-job-store"
# A fit the sweep did not make is drawn before its silhouette: the analysis store whose
# silhouette is to be computed, and the answer {"state", "text"} (applied only while the
# analysis shown is still that one).
SILHOUETTE_REQUEST = "silhouette-request-store"
SILHOUETTE_ANSWER = "silhouette-answer-store"
SELECTION = "selection-store"  # [segment, ...]; empty = no segment chosen
SUMMARY = "shell-summary"
USER_EMAIL = "shell-user-email"
LOGOUT = "shell-logout"
CONTROLS_PANEL = "shell-controls"
CONTROLS_OPEN = "shell-controls-open"
CONTROLS_CLOSE = "shell-controls-close"
PROGRESS = "shell-progress"
PROGRESS_WRAP = "shell-progress-wrap"
CANCEL = "shell-cancel"

# Data
SAMPLE = "data-sample"
UPLOAD = "data-upload"
UPLOAD_ALERT = "data-upload-alert"
DATASET_INFO = "data-dataset-info"
MAPPING_FIELDS = "data-mapping-fields"
MAPPING_APPLY = "data-mapping-apply"
DATE_ORDER = "data-date-order"
MAPPING_ALERT = "data-mapping-alert"
REPORT = "data-report"
DATASET_LIST = "data-datasets"
DATASETS_ALERT = "data-datasets-alert"
DATASETS_CHANGED = "data-datasets-changed"  # dcc.Store: a counter bumped by a rename
RENAME_INPUT = "data-rename"
RENAME_APPLY = "data-rename-apply"
DELETE_CONFIRM = "data-delete-confirm"
DELETE_TEXT = "data-delete-text"
DELETE_YES = "data-delete-yes"
DELETE_NO = "data-delete-no"
DELETE_PENDING = "data-delete-pending"  # dcc.Store: the dataset id awaiting confirmation

# Explore
EXPLORE_FEATURE = "explore-feature"
EXPLORE_LOG = "explore-log"
HISTOGRAM = "explore-histogram"
CORRELATION = "explore-correlation"
STATS = "explore-stats"
RF_VALUE = "explore-rf-value"
RF_HEATMAP = "explore-rf-heatmap"

# Segments: controls (in the side panel) and views
ALGORITHM = "segments-algorithm"
K_AUTO = "segments-k-auto"
K_SLIDER = "segments-k"
FEATURES = "segments-features"
SCALING = "segments-scaling"
PCA = "segments-pca"
SEED = "segments-seed"
SEGMENT_ALERT = "segments-alert"
NOTICES = "segments-notices"
K_CHART = "segments-k-chart"
K_REASON = "segments-k-reason"
METRICS = "segments-metrics"
STABILITY_RUNNING = "segments-stability-running"
SCATTER_3D = "segments-scatter-3d"
SCATTER_2D = "segments-scatter-2d"
X_AXIS = "segments-x"
Y_AXIS = "segments-y"
BUBBLE = "segments-bubble"
BUBBLE_X = "segments-bubble-x"
BUBBLE_Y = "segments-bubble-y"
BUBBLE_SIZE = "segments-bubble-size"
BARS = "segments-bars"
RFM_CLUSTER = "segments-rfm-cluster"

# Personas
RADAR = "personas-radar"
PERSONA_CARDS = "personas-cards"

# Customers
SEGMENT_FILTER = "customers-segments"
RANGES = "customers-ranges"
QUICK_SEARCH = "customers-search"
GRID = "customers-grid"
GRID_WRAP = "customers-grid-wrap"
ROW_COUNT = "customers-row-count"
DOWNLOAD_CSV = "customers-download-csv"
DOWNLOAD_XLSX = "customers-download-xlsx"
DOWNLOAD_CONTACTS = "customers-download-contacts"
DOWNLOAD = "customers-download"
CUSTOMERS_ALERT = "customers-alert"

#: Figures whose traces carry ``meta.segment`` and follow the shared selection.
HIGHLIGHTED_FIGURES = (SCATTER_3D, SCATTER_2D, BUBBLE, BARS, RADAR)
#: Figures with a legend of segments: showing or hiding entries there selects segments.
LEGEND_FIGURES = (SCATTER_3D, SCATTER_2D, BUBBLE, RADAR)


def mapping_field(role: str | object) -> dict:
    """One column-mapping dropdown (``role`` a role name, or ``ALL``)."""
    return {"type": "mapping-role", "index": role}


def persona_card(segment: int | object) -> dict:
    """One persona card (``segment`` a number, ``MATCH`` or ``ALL``); clicking selects it."""
    return {"type": "persona-card", "index": segment}


def range_filter(feature: str | object) -> dict:
    """One range slider filtering the customer grid by a feature."""
    return {"type": "range-filter", "index": feature}


def dataset_open(dataset_id: str | object) -> dict:
    """The button opening one of the user's datasets (an id, or ``ALL``)."""
    return {"type": "dataset-open", "index": dataset_id}


def dataset_delete(dataset_id: str | object) -> dict:
    """The button asking to delete one of the user's datasets (an id, or ``ALL``)."""
    return {"type": "dataset-delete", "index": dataset_id}


# Saved models and the new-customer form
MODEL_NAME = "models-name"
MODEL_SAVE = "models-save"
MODEL_ALERT = "models-alert"
MODEL_LIST = "models-list"
MODEL_OPEN = "models-open"  # the open saved segmentation's id (checked on the server)
MODELS_CHANGED = "models-changed"  # bumped after a save, rename or delete
MODEL_RENAME_INPUT = "models-rename-input"
MODEL_RENAME_APPLY = "models-rename-apply"
MODEL_DELETE_PENDING = "models-delete-pending"
MODEL_DELETE_CONFIRM = "models-delete-confirm"
MODEL_DELETE_TEXT = "models-delete-text"
MODEL_DELETE_YES = "models-delete-yes"
MODEL_DELETE_NO = "models-delete-no"
MODEL_DETAIL = "models-detail"
SCORE_FIELDS = "models-score-fields"
SCORE_RESULT = "models-score-result"
SCORE_CUSTOMER_ID = "models-score-customer-id"
APPEND = "models-append"
APPEND_ALERT = "models-append-alert"


def model_field(index: int | object) -> dict:
    """One number input of the new-customer form (a position in the fields, or ``ALL``)."""
    return {"type": "models-field", "index": index}


def model_reopen(segmentation_id: str | object) -> dict:
    """The button reopening one saved segmentation (an id, or ``ALL``)."""
    return {"type": "models-reopen", "index": segmentation_id}


def model_delete(segmentation_id: str | object) -> dict:
    """The button asking to delete one saved segmentation (an id, or ``ALL``)."""
    return {"type": "models-delete", "index": segmentation_id}

# Connect dialog (Data section): a server path or folder, a URL, or a database table.
CONNECT_SHOW = "data-connect-show"
CONNECT_DIALOG = "data-connect"
CONNECT_KIND = "data-connect-kind"
CONNECT_LOCATION = "data-connect-location"
CONNECT_TABLE = "data-connect-table"
CONNECT_HINT = "data-connect-hint"
CONNECT_GO = "data-connect-go"
CONNECT_CANCEL = "data-connect-cancel"
CONNECT_ALERT = "data-connect-alert"
CONNECT_RUNNING = "data-connect-running"
REFRESH = "data-refresh"
REFRESH_ALERT = "data-refresh-alert"
