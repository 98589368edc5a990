"""When `sketchtune tune` dies, the flow it started (in a session of its own) must not
run on as an orphan: the CLI asks Linux to send the flow SIGHUP when it dies
(flows/cli.py), and the flow then raises ParentGone (flows/tune_model.py)."""


class ParentGone(BaseException):
    """The `sketchtune tune` process that started the flow died: stop at once. Every
    result measured so far is recorded already; nothing is compiled or reported.
    (A BaseException, so that no handler of ordinary errors swallows it.)"""
