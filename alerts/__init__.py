"""Alerting for driftd: Prometheus rules and their unit tests, the Alertmanager
configuration, rule push with reload, and the webhook receiver that turns alerts
into incidents.

Modules: :mod:`alerts.catalogue` (every alert, from the configuration and the
detector registry), :mod:`alerts.rules` and :mod:`alerts.ruletests` (rule and
``promtool test rules`` files), :mod:`alerts.alertmanager`, :mod:`alerts.push`,
:mod:`alerts.receiver`, :mod:`alerts.cli` (``driftd rules``). Errors derive from
:class:`alerts.errors.AlertsError`.
"""
