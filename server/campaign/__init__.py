"""Campaign planning: inventory diagnosis, a budget-bounded planner, message drafts, saved plans.

Everything here but `forecast` and `audiences` is plain Python over plain dataclasses, so the
planner can be reasoned about and tested without models; the gRPC layer is
`server.services.campaign`.
"""
