/** `camel` without the JBang launcher: java -cp CLASSPATH CamelCli.java run ... (Java's source launcher). */
public class CamelCli {
    public static void main(String[] args) {
        org.apache.camel.dsl.jbang.core.commands.CamelJBangMain.run(args);
    }
}
