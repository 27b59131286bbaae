"""How the pages write dates and times: as the browser writes them in live updates.

Live updates format with Intl's "medium" date and time styles in the page's language
(static/js/live.js), which for English reads "Dec 3, 2026, 9:21:50 AM". Every time the server
writes, short or long, uses the same format, so a value reads the same before and after a live
update and a table's rows agree whichever wrote them.
"""

DATE_FORMAT = "M j, Y"
SHORT_DATE_FORMAT = DATE_FORMAT
DATETIME_FORMAT = "M j, Y, g:i:s A"
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
