"""IPython display formatters for E2B's result fields: `e2b/data` (a pandas
DataFrame as columns of values), `e2b/chart` (what a matplotlib figure
shows: its type, title, axis labels and data) and `application/json` for
plain lists and dicts. Loaded as an IPython extension by
/etc/ipython/ipython_kernel_config.py. The figure itself still comes as
image/png from matplotlib's inline backend."""
import json
import sys

from IPython.core.formatters import BaseFormatter, JSONFormatter
from traitlets import ObjectName, Unicode


def _plain(v):
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        try:
            return v.item()
        except (ValueError, TypeError):
            pass
    return v


class DataFormatter(BaseFormatter):
    format_type = Unicode("e2b/data")
    print_method = ObjectName("_repr_e2b_data_")
    _return_type = (dict, str)

    def __call__(self, obj):
        pd = sys.modules.get("pandas")
        if pd is None or not isinstance(obj, pd.DataFrame):
            return super().__call__(obj)
        return {str(k): [_plain(v) for v in col] for k, col in obj.to_dict(orient="list").items()}


def _axis_scale(ax, which):
    try:
        return (ax.get_xscale if which == "x" else ax.get_yscale)()
    except Exception:  # noqa: BLE001
        return "linear"


def _ticks(ax, which):
    get = ax.get_xticks if which == "x" else ax.get_yticks
    labels = ax.get_xticklabels if which == "x" else ax.get_yticklabels
    return [_plain(t) for t in get()], [t.get_text() for t in labels()]


def _axes_chart(ax):
    from matplotlib.collections import PathCollection
    from matplotlib.patches import Rectangle, Wedge

    title = ax.get_title()
    base = {"title": title, "x_label": ax.get_xlabel(), "y_label": ax.get_ylabel()}
    wedges = [p for p in ax.patches if isinstance(p, Wedge)]
    if wedges:
        labels = [t.get_text() for t in ax.texts]
        return {"type": "pie", "title": title, "elements": [
            {"label": labels[i] if i < len(labels) else "", "angle": abs(w.theta2 - w.theta1), "radius": w.r}
            for i, w in enumerate(wedges)]}
    if ax.containers:
        ticks, tick_labels = _ticks(ax, "x")
        elements = []
        for cont in ax.containers:
            group = cont.get_label() or ""
            for i, bar in enumerate(b for b in cont if isinstance(b, Rectangle)):
                x = bar.get_x() + bar.get_width() / 2
                label = ""
                for t, tl in zip(ticks, tick_labels):
                    if abs(t - x) < bar.get_width() / 2 + 1e-9:
                        label = tl
                elements.append({"label": label, "value": _plain(bar.get_height()), "group": group})
        return dict(base, type="bar", elements=elements)
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_child")]
    if not lines:
        lines = ax.get_lines()
    kind = "line" if lines else "scatter" if scatters else None
    if kind is None:
        return None
    xt, xl = _ticks(ax, "x")
    yt, yl = _ticks(ax, "y")
    elements = []
    if lines:
        for ln in lines:
            pts = [[_plain(x), _plain(y)] for x, y in zip(ln.get_xdata(), ln.get_ydata())]
            elements.append({"label": ln.get_label(), "points": pts})
    else:
        for sc in scatters:
            pts = [[_plain(x), _plain(y)] for x, y in sc.get_offsets()]
            elements.append({"label": sc.get_label(), "points": pts})
    return dict(base, type=kind, x_ticks=xt, x_tick_labels=xl, x_scale=_axis_scale(ax, "x"),
                y_ticks=yt, y_tick_labels=yl, y_scale=_axis_scale(ax, "y"), elements=elements)


class ChartFormatter(BaseFormatter):
    format_type = Unicode("e2b/chart")
    print_method = ObjectName("_repr_e2b_chart_")
    _return_type = (dict, str)

    def __call__(self, obj):
        if sys.modules.get("matplotlib") is None:
            return super().__call__(obj)
        from matplotlib.figure import Figure
        if not isinstance(obj, Figure):
            return super().__call__(obj)
        try:
            charts = [c for c in (_axes_chart(ax) for ax in obj.axes) if c]
            if len(charts) == 1:
                out = charts[0]
            elif charts:
                title = obj._suptitle.get_text() if getattr(obj, "_suptitle", None) else ""
                out = {"type": "superchart", "title": title, "elements": charts}
            else:
                out = {"type": "unknown", "title": "", "elements": []}
            json.dumps(out)
            return out
        except Exception:  # noqa: BLE001
            return {}


class ListJSONFormatter(JSONFormatter):
    def __call__(self, obj):
        if isinstance(obj, (list, dict)):
            try:
                return json.loads(json.dumps(obj, default=_plain)), {"expanded": True}
            except (TypeError, ValueError):
                pass
        return super().__call__(obj)


def load_ipython_extension(ip):
    f = ip.display_formatter
    f.formatters["e2b/data"] = DataFormatter(parent=f)
    f.formatters["e2b/chart"] = ChartFormatter(parent=f)
    f.formatters["application/json"] = ListJSONFormatter(parent=f)
