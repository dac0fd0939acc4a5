"""What a PromQL expression refers to: metric names, label matchers and
grouping labels, for checking monitoring assets against a live scrape.

Not a full PromQL parser: a tokenizer and a walk over the tokens that
knows the few shapes which name metrics and labels (selectors, their
matchers, by/without/on/ignoring/group_left/group_right lists) and the
function and keyword names.  Syntax errors that would hide a reference
(an unterminated string, an unbalanced bracket, an unknown function)
raise PromQLError; promtool and the real Prometheus check the rest.
"""

import collections
import re

Token = collections.namedtuple("Token", "kind value pos")
Selector = collections.namedtuple("Selector", "name matchers pos")
Matcher = collections.namedtuple("Matcher", "label op value")


class PromQLError(ValueError):
    pass


AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar",
                "count", "count_values", "bottomk", "topk", "quantile"}
MODIFIERS = {"by", "without", "on", "ignoring", "group_left",
             "group_right"}
WORD_OPERATORS = {"and", "or", "unless", "atan2", "bool", "offset"}
# Prometheus 2.42's functions
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh",
    "atan", "atanh", "avg_over_time", "ceil", "changes", "clamp",
    "clamp_max", "clamp_min", "cos", "cosh", "count_over_time",
    "days_in_month", "day_of_month", "day_of_week", "day_of_year", "deg",
    "delta", "deriv", "end", "exp", "floor", "histogram_quantile",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join",
    "label_replace", "last_over_time", "ln", "log10", "log2",
    "max_over_time", "min_over_time", "minute", "month", "pi",
    "predict_linear", "present_over_time", "quantile_over_time", "rad",
    "rate", "resets", "round", "scalar", "sgn", "sin", "sinh", "sort",
    "sort_desc", "sqrt", "start", "stddev_over_time", "stdvar_over_time",
    "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year"}
NUMBER_WORDS = {"inf", "nan"}

_TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<duration>(?:\d+(?:ms|s|m|h|d|w|y))+(?![\w.]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^=<>@,:])
  | (?P<paren>[(){}\[\]])
""", re.VERBOSE)
_CLOSE = {"(": ")", "{": "}", "[": "]"}
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_STEP = re.compile(r"^:(?:\d+(?:ms|s|m|h|d|w|y))*$")


def tokenize(expr):
    """[Token(kind, value, pos)] with blanks and comments left out; kinds:
    duration, number, string, ident, op, paren."""
    out, pos, stack = [], 0, []
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise PromQLError("unexpected %r at %d in %r"
                              % (expr[pos], pos, expr))
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "paren":
            if value in _CLOSE:
                stack.append((value, pos))
            elif not stack or _CLOSE[stack.pop()[0]] != value:
                raise PromQLError("unbalanced %r at %d in %r"
                                  % (value, pos, expr))
        if kind != "ws":
            out.append(Token(kind, value, pos))
        pos = m.end()
    if stack:
        raise PromQLError("unclosed %r at %d in %r"
                          % (stack[-1][0], stack[-1][1], expr))
    return out


def _unquote(s):
    if s[0] == "`":
        return s[1:-1]
    body = s[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}
                  .get(m.group(1), m.group(1)), body)


class Refs:
    """selectors: [Selector(name, [Matcher], pos)]; grouping: [(keyword,
    label)] from by/without/on/ignoring/group_left/group_right; functions:
    names called."""

    def __init__(self):
        self.selectors = []
        self.grouping = []
        self.functions = []

    @property
    def metrics(self):
        return {s.name for s in self.selectors}


def references(expr):
    """Refs of expr; PromQLError if it cannot be read."""
    toks = tokenize(expr)
    refs = Refs()
    i = 0

    def peek(j):
        return toks[j] if j < len(toks) else Token("end", "", len(expr))

    def matchers(j):
        """Parse {label op "value", ...} starting at toks[j] == "{"."""
        out = []
        j += 1
        while peek(j).value != "}":
            lab, op, val = peek(j), peek(j + 1), peek(j + 2)
            if lab.kind != "ident" or not _LABEL.match(lab.value) \
                    or op.value not in ("=", "!=", "=~", "!~") \
                    or val.kind != "string":
                raise PromQLError("bad label matcher at %d in %r"
                                  % (lab.pos, expr))
            out.append(Matcher(lab.value, op.value, _unquote(val.value)))
            j += 3
            if peek(j).value == ",":
                j += 1
            elif peek(j).value != "}":
                raise PromQLError("expected , or } at %d in %r"
                                  % (peek(j).pos, expr))
        return out, j + 1

    while i < len(toks):
        t = toks[i]
        nxt = peek(i + 1)
        if t.kind == "ident":
            word = t.value
            if word in MODIFIERS:
                if nxt.value != "(":
                    raise PromQLError("%s without a label list at %d in %r"
                                      % (word, t.pos, expr))
                j = i + 2
                while peek(j).value != ")":
                    lab = peek(j)
                    if lab.kind != "ident" or not _LABEL.match(lab.value):
                        raise PromQLError("bad label %r in %s (...) in %r"
                                          % (lab.value, word, expr))
                    refs.grouping.append((word, lab.value))
                    j += 1
                    if peek(j).value == ",":
                        j += 1
                i = j + 1
                continue
            if word in AGGREGATIONS and nxt.value in ("(", "by",
                                                       "without"):
                i += 1
                continue
            if word in WORD_OPERATORS or word.lower() in NUMBER_WORDS:
                i += 1
                continue
            if nxt.value == "(":
                if word not in FUNCTIONS:
                    raise PromQLError("unknown function %s at %d in %r"
                                      % (word, t.pos, expr))
                refs.functions.append(word)
                i += 1
                continue
            if nxt.value == "{":
                ms, i = matchers(i + 1)
            else:
                ms, i = [], i + 1
            refs.selectors.append(Selector(word, ms, t.pos))
            continue
        if t.value == "{":
            ms, i = matchers(i)
            names = [m.value for m in ms
                     if m.label == "__name__" and m.op == "="]
            if not names:
                raise PromQLError("selector without a metric name at %d in"
                                  " %r" % (t.pos, expr))
            refs.selectors.append(Selector(
                names[0], [m for m in ms if m.label != "__name__"], t.pos))
            continue
        if t.value == "[":
            # range or subquery: durations and a colon only
            j = i + 1
            while peek(j).value != "]":
                # "[5m:1m]": the colon may start an identifier token
                if peek(j).kind not in ("duration", "op", "number") \
                        and not _STEP.match(peek(j).value):
                    raise PromQLError("bad range at %d in %r"
                                      % (peek(j).pos, expr))
                j += 1
            i = j + 1
            continue
        i += 1
    return refs


# Grafana's template syntax inside dashboard queries

GRAFANA_INTERVALS = {"$__rate_interval", "$__interval", "$__range",
                     "${__rate_interval}", "${__interval}", "${__range}"}


def grafana_expr(expr, variables):
    """A dashboard query as PromQL: interval macros become 5m, $var and
    ${var} the given values (a KeyError names an unknown variable)."""
    for macro in sorted(GRAFANA_INTERVALS, key=len, reverse=True):
        expr = expr.replace(macro, "5m")

    def sub(m):
        name = m.group(1) or m.group(2)
        return variables[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", sub, expr)


_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(.*),)?\s*([a-zA-Z_]\w*)"
                           r"\s*\)\s*$", re.S)


def grafana_variable_query(query):
    """(PromQL selector or None, label) of a label_values() variable query,
    or None for another kind of query."""
    m = _LABEL_VALUES.match(query)
    if not m:
        return None
    return (m.group(1).strip() if m.group(1) else None), m.group(2)
