"""skelem.evaluation"""
