"""The Streamlit investigation app (``driftd app``).

It reads the driftd store and writes only incident notes. The store URL reaches
the Streamlit script through the environment variable :data:`STORE_URL_ENV`
(set by ``driftd app`` from ``store.url`` in ``driftd.yaml``), never through the
command line, so that a password in the URL does not show up in ``ps``.

Streamlit and plotly are optional (``pip install 'driftd[app]'``); nothing here
imports them at package import time.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["APP_SCRIPT", "CONFIG_ENV", "STORE_URL_ENV"]

#: The Streamlit entry script (``streamlit run`` target).
APP_SCRIPT = Path(__file__).with_name("main.py")
#: Environment variable that carries the store URL to the app.
STORE_URL_ENV = "DRIFTD_APP_STORE_URL"
#: Environment variable with the driftd.yaml path, when ``driftd app`` was given one:
#: baselines that are not in the store are read from the files it names.
CONFIG_ENV = "DRIFTD_APP_CONFIG"
