"""Page layouts: functions returning Dash components; every id comes from ``layouts.ids``."""
