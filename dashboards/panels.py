"""Small typed helpers over grafana-foundation-sdk builders shared by the three dashboards.

Every helper takes the unit as a required argument and sets the datasource to the
``$datasource`` variable, so no panel can be built without either. Queries are
PromQL strings; the selectors shared by a dashboard are assembled in its module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import heatmap as heatmap_builders
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.builders import stat as stat_builders
from grafana_foundation_sdk.builders import table as table_builders
from grafana_foundation_sdk.builders import timeseries as timeseries_builders
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dash_models
from grafana_foundation_sdk.models import heatmap as heatmap_models
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from dashboards.uids import DATASOURCE_UID

__all__ = [
    "DATASOURCE",
    "DATASOURCE_UID",
    "DATASOURCE_VARIABLE",
    "Links",
    "above",
    "below",
    "datasource_variable",
    "heatmap",
    "link",
    "plain",
    "query",
    "query_variable",
    "stat",
    "table",
    "timeseries",
]

# The provisioned datasource's uid (dashboards.uids); the $datasource variable defaults to it.
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = dash_models.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")

GOOD, BAD = "green", "red"


@dataclass(frozen=True, slots=True)
class Links:
    """Where panel links lead: the investigation app and the runbooks.

    >>> Links("http://app:8501/", "https://x/runbooks").runbook("DriftdModelDrift")
    'https://x/runbooks/DriftdModelDrift.md'
    """

    app_url: str
    runbook_base_url: str

    def app(self, model: str, version: str, feature: str | None = None,
            segment: str | None = None) -> str:
        """A deep link into the investigation app for the panel's time range.

        Arguments are Grafana template expressions (``${model:percentencode}``,
        ``${__field.labels.feature:percentencode}``); ``${__from}``/``${__to}`` are
        epoch ms, which the app reads as such.
        """
        params = [f"model={model}", f"version={version}"]
        if segment is not None:
            params.append(f"segment={segment}")
        if feature is not None:
            params.append(f"feature={feature}")
        params += ["from=${__from}", "to=${__to}"]
        return f"{self.app_url.rstrip('/')}/?{'&'.join(params)}"

    def runbook(self, alert: str) -> str:
        # Not URL-quoted: ``alert`` may be a template such as ``${__data.fields.alert}``.
        return f"{self.runbook_base_url.rstrip('/')}/{alert}.md"


def link(title: str, url: str, *, new_tab: bool = True) -> dash.DashboardLink:
    """A panel or data link; the app and runbooks open in a new tab, dashboards in place."""
    return dash.DashboardLink(title).url(url).target_blank(new_tab)


def query(
    expr: str, legend: str = "__auto", *, ref_id: str = "A", instant: bool = False, table: bool = False
) -> prom.Dataquery:
    """A Prometheus query; ``instant`` for tables and stats showing the current value."""
    target = prom.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).datasource(DATASOURCE)
    target = target.instant() if instant else target.range()
    if table:
        target = target.format(PromQueryFormat.TABLE)
    return target


def _steps(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(dash_models.ThresholdsMode.ABSOLUTE)
        .steps([dash_models.Threshold(value=value, color=color) for value, color in steps])
    )


def above(threshold: float) -> dash.ThresholdsConfig:
    """Red at and above ``threshold`` (drift scores, lag, error rates)."""
    return _steps((None, GOOD), (threshold, BAD))


def below(threshold: float) -> dash.ThresholdsConfig:
    """Red below ``threshold`` (rank agreement, coverage)."""
    return _steps((None, BAD), (threshold, GOOD))


def plain() -> dash.ThresholdsConfig:
    """No threshold: one neutral colour."""
    return _steps((None, GOOD))


@dataclass(frozen=True, slots=True)
class Size:
    width: int
    height: int


def _common(builder, title: str, description: str, unit: str, size: Size,
            targets: Sequence[prom.Dataquery], thresholds: dash.ThresholdsConfig | None,
            data_links: Sequence[dash.DashboardLink], links: Sequence[dash.DashboardLink]):
    builder = (
        builder.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(size.width)
        .height(size.height)
        .targets(list(targets))
        .thresholds(thresholds if thresholds is not None else plain())
    )
    if data_links:
        builder = builder.data_links(list(data_links))
    if links:
        builder = builder.links(list(links))
    return builder


def timeseries(
    title: str,
    description: str,
    targets: Sequence[prom.Dataquery],
    *,
    unit: str,
    width: int = 12,
    height: int = 8,
    thresholds: dash.ThresholdsConfig | None = None,
    data_links: Sequence[dash.DashboardLink] = (),
    links: Sequence[dash.DashboardLink] = (),
    min_value: float | None = None,
    max_value: float | None = None,
) -> timeseries_builders.Panel:
    """A time series; thresholds, when given, are drawn as a dashed line."""
    panel = _common(timeseries_builders.Panel(), title, description, unit, Size(width, height),
                    targets, thresholds, data_links, links)
    panel = panel.legend(
        common_builders.VizLegendOptions()
        .show_legend(True)
        .display_mode(common_models.LegendDisplayMode.TABLE)
        .placement(common_models.LegendPlacement.RIGHT)
        .calcs(["lastNotNull", "max"])
        .sort_by("Last *")
        .sort_desc(True)
    ).line_width(1).fill_opacity(0).show_points(common_models.VisibilityMode.NEVER)
    if thresholds is not None:
        panel = panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common_models.GraphThresholdsStyleMode.DASHED)
        )
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    return panel


def stat(
    title: str,
    description: str,
    target: prom.Dataquery,
    *,
    unit: str,
    width: int = 4,
    height: int = 4,
    thresholds: dash.ThresholdsConfig | None = None,
    no_value: str | None = None,
    links: Sequence[dash.DashboardLink] = (),
) -> stat_builders.Panel:
    """A single current value coloured by its thresholds."""
    panel = _common(stat_builders.Panel(), title, description, unit, Size(width, height),
                    [target], thresholds, (), links)
    panel = panel.color_mode(common_models.BigValueColorMode.BACKGROUND).graph_mode(
        common_models.BigValueGraphMode.AREA
    ).reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    if no_value is not None:
        panel = panel.no_value(no_value)
    return panel


def table(
    title: str,
    description: str,
    targets: Sequence[prom.Dataquery],
    *,
    unit: str,
    transformations: Sequence[dash_models.DataTransformerConfig] = (),
    sort_by: str | None = None,
    width: int = 12,
    height: int = 8,
    thresholds: dash.ThresholdsConfig | None = None,
    data_links: Sequence[dash.DashboardLink] = (),
    links: Sequence[dash.DashboardLink] = (),
    no_value: str | None = None,
    column_units: Mapping[str, str] | None = None,
    coloured: Sequence[str] = (),
) -> table_builders.Panel:
    """A table of instant values; rows sorted descending by ``sort_by``.

    ``unit`` applies to every column but those named in ``column_units``; the
    ``coloured`` columns get their cell background from the thresholds.
    """
    panel = _common(table_builders.Panel(), title, description, unit, Size(width, height),
                    targets, thresholds, data_links, links)
    for column, column_unit in (column_units or {}).items():
        panel = panel.override_by_name(column, [dash_models.DynamicConfigValue(id_val="unit",
                                                                               value=column_unit)])
    for column in coloured:
        panel = panel.override_by_name(column, [dash_models.DynamicConfigValue(
            id_val="custom.cellOptions", value={"type": "color-background"})])
    for transformation in transformations:
        panel = panel.with_transformation(transformation)
    if sort_by is not None:
        panel = panel.sort_by([common_builders.TableSortByFieldState().display_name(sort_by).desc(True)])
    if no_value is not None:
        panel = panel.no_value(no_value)
    return panel


def heatmap(
    title: str,
    description: str,
    target: prom.Dataquery,
    *,
    unit: str,
    max_value: float,
    width: int = 24,
    height: int = 10,
    data_links: Sequence[dash.DashboardLink] = (),
) -> heatmap_builders.Panel:
    """Series (one per feature) as rows of coloured cells over time, not re-bucketed."""
    panel = _common(heatmap_builders.Panel(), title, description, unit, Size(width, height),
                    [target], None, data_links, ())
    return (
        panel.calculate(False)
        .color(
            heatmap_builders.HeatmapColorOptions()
            .mode(heatmap_models.HeatmapColorMode.SCHEME)
            .scheme("RdYlGn")
            .reverse(True)
            .scale(heatmap_models.HeatmapColorScale.LINEAR)
            .min(0)
            .max(max_value)
            .steps(64)
        )
        .cell_values(heatmap_builders.CellValues().unit(unit).decimals(2))
        .y_axis(heatmap_builders.YAxisConfig().unit("none"))
        .show_value(common_models.VisibilityMode.NEVER)
        .show_color_scale(True)
    )


def _transformation(id_: str, options: dict[str, object]) -> dash_models.DataTransformerConfig:
    return dash_models.DataTransformerConfig(id_val=id_, options=options)


def merge_and_rename(columns: dict[str, str], hidden: Sequence[str] = ("Time",),
                     limit: int | None = None, sort_field: str | None = None
                     ) -> list[dash_models.DataTransformerConfig]:
    """Join instant table queries on their labels, then rename and order the columns."""
    steps = [_transformation("merge", {})]
    if sort_field is not None:
        steps.append(_transformation("sortBy", {"sort": [{"field": sort_field, "desc": True}]}))
    if limit is not None:
        steps.append(_transformation("limit", {"limitField": limit}))
    steps.append(_transformation("organize", {
        "excludeByName": {name: True for name in hidden},
        "indexByName": {name: i for i, name in enumerate(columns)},
        "renameByName": dict(columns),
    }))
    return steps


def datasource_variable() -> dash.DatasourceVariable:
    """``$datasource``: any Prometheus, defaulting to the provisioned one."""
    return (
        dash.DatasourceVariable(DATASOURCE_VARIABLE)
        .label("Prometheus")
        .type("prometheus")
        .current(dash_models.VariableOption(selected=True, text="driftd Prometheus", value=DATASOURCE_UID))
    )


def query_variable(
    name: str, label: str, expr: str, *, multi: bool = False, all_value: str | None = None,
    newest_first: bool = False,
) -> dash.QueryVariable:
    """A variable filled from ``label_values(...)`` and refreshed with the time range.

    Values sort naturally (``v2`` before ``v10``); ``newest_first`` reverses the order
    so that the default (first) value is the highest, e.g. the latest model version.
    """
    order = dash_models.VariableSort.NATURAL_DESC if newest_first else dash_models.VariableSort.NATURAL_ASC
    variable = (
        dash.QueryVariable(name)
        .label(label)
        .query(expr)
        .datasource(DATASOURCE)
        .refresh(dash_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(order)
    )
    if multi:
        variable = variable.multi(True).include_all(True)
        if all_value is not None:
            variable = variable.all_value(all_value)
        variable = variable.current(dash_models.VariableOption(selected=True, text="All", value="$__all"))
    return variable
