package org.sensormetrics.consumer;

/** A bad query parameter of the read API; its error handler answers it with 400, naming the parameter. */
public class InvalidQueryParameter extends IllegalArgumentException {

    private final String parameter;

    public InvalidQueryParameter(String parameter, String message) {
        super(parameter + " " + message);
        this.parameter = parameter;
    }

    public String getParameter() {
        return parameter;
    }
}
