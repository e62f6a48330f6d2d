"""The whole platform on this machine, no AWS account (`make demo`, scripts/demo.py).

arrivals   the staged lake's files split into consecutive deliveries into bronze
run        run_demo(DemoOptions): generate, arrivals with a stream run after each, daily, online
           features, the baseline model
report     the printed summary and <lake-root>/_runs/report.html
"""

from devtools.demo.arrivals import BRONZE, LABELS, arrival_hour, deliver, plan_arrivals, reported_day
from devtools.demo.run import DemoOptions, run_demo

__all__ = ["BRONZE", "LABELS", "DemoOptions", "arrival_hour", "deliver", "plan_arrivals", "reported_day", "run_demo"]
