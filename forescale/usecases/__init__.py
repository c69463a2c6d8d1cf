"""The use cases: one module per verb, short functions over typed inputs.

* :mod:`.context` — :class:`~.context.App` (settings, store, candidate models, Terraform
  runner) and the mapping of a service's settings to the core's records;
* :mod:`.collect` — fetch new samples into the store;
* :mod:`.refit` — fit the candidates, choose by their record, store a
  :class:`~forescale.records.ForecastRun` (never touches Terraform);
* :mod:`.plan` — plan capacity from a stored run, the history and ``now`` (the only place
  capacity is planned outside the core: the CLI, the API and apply all call it);
* :mod:`.apply` — act on the step due now, safely, with an audit trail;
* :mod:`.backtest` — wiring for the rolling-origin backtest (the engine is
  :mod:`forescale.forecaster.backtest`).

The adapters (``forescale.cli``, ``forescale.api``, ``forescale.daemon``) call these and
translate; nothing else.
"""
