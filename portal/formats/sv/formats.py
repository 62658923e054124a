"""Dates, times and numbers as Swedish support and bookkeeping write them.

Django's Swedish formats, except that dates are ISO everywhere (2026-03-05, as on an
invoice and in our own templates) instead of "5 mars 2026" in some admin columns: one
form of a date on every page. Amounts: decimal comma, a non-breaking space between
thousands (``billing.money``); the English pages use these formats too (../en).
"""

DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "Y-m-d H:i"
YEAR_MONTH_FORMAT = "F Y"
MONTH_DAY_FORMAT = "j F"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
FIRST_DAY_OF_WEEK = 1  # Monday

DATE_INPUT_FORMATS = [
    "%Y-%m-%d",  # '2026-03-05'
]
DATETIME_INPUT_FORMATS = [
    "%Y-%m-%d %H:%M:%S",  # '2026-03-05 14:30:59'
    "%Y-%m-%d %H:%M:%S.%f",  # '2026-03-05 14:30:59.000200'
    "%Y-%m-%d %H:%M",  # '2026-03-05 14:30'
]
DECIMAL_SEPARATOR = ","
THOUSAND_SEPARATOR = "\xa0"  # non-breaking space
NUMBER_GROUPING = 3
