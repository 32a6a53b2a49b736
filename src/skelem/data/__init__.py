"""skelem.data"""
