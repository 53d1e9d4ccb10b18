"""Every component id that a callback or a test touches."""

SAMPLE = "overview-sample"
SUMMARY = "overview-summary"
PERSONA_TABLE = "overview-persona-table"
ERROR = "overview-error"
