"""skelem.metrics"""
