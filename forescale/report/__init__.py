"""Reports: one view per report, laid out by one small renderer per format.

Views decide every line a reader sees, once:
  ``plan_view``      the plan report's records (built by the pipeline) and its view
  ``backtest_view``  the backtest report's view of a ``BacktestResult``
Renderers only lay a view out:
  ``plan_text`` ``plan_markdown`` ``plan_html`` ``plan_json``
  ``backtest_text`` ``backtest_html`` ``backtest_json``
  ``render``         format name -> renderer (one dict per report)
Shared by them:
  ``formatting``     number and time wording
  ``blocks``         the records a view is made of (phrases, tables, diff lines)
  ``text_blocks`` / ``html_blocks``  those records as rich markup / HTML
  ``svg`` ``plan_plot`` ``backtest_plot``  the HTML pages' plots
  ``backtest_csv``   the ``forescale backtest --schedule-out`` file

Kept free of imports, like ``forescale/__init__.py``: import the module you need.
"""
